import { expect, it } from "vitest";
import { signedJobsMain } from "../src/signed-jobs.js";

it("runs the signed and encrypted jobs example: the broker holds the payload sealed, a forged job is refused with reason signature", async () => {
  const lines: string[] = [];
  const result = await signedJobsMain((line) => lines.push(line));
  expect(result.handled).toEqual([{ card: "4242 4242 4242 4242", cents: 1999 }]);
  expect(result.brokerBody).toMatch(/"payload":\{"\$enc":"v1\.e1\.[A-Za-z0-9_-]+"\},"sig":"s1\.[A-Za-z0-9_-]{43}"\}$/);
  expect(result.brokerBody).not.toContain("4242");
  expect(result.deadLetters).toEqual([{ reason: "signature" }]);
  expect(lines).toContain("forged job: dead-lettered with reason signature, never run");
});
