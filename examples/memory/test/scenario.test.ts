import { runScenario } from "example-shared";
import { expect, it } from "vitest";
import { connect } from "../src/broker.js";

it("runs the example scenario on the memory broker: priorities, delay, retries and a dead letter", async () => {
  const lines: string[] = [];
  const result = await runScenario({ connect, log: (line) => lines.push(line) });
  expect(result).toEqual({ succeeded: 8, deadLettered: 1, retried: 2, firstImage: "critical" });
  const reminder = lines.find((l) => l.startsWith("[email.reminder]"));
  const lateMs = Number(reminder?.match(/due (-?\d+) ms ago/)?.[1]);
  expect(lateMs).toBeGreaterThanOrEqual(0);
  expect(lines.filter((l) => l.startsWith("[payment.charge] order A-1002: card declined"))).toHaveLength(3);
  expect(lines.some((l) => l.startsWith('dead letter in "payments": payment.charge after 3 attempts'))).toBe(true);
});
