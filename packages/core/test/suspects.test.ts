import { describe, expect, it } from "vitest";
import type { Held } from "../src/internal/held.js";
import { isSuspect, pickSuspect } from "../src/internal/suspects.js";

/** Only the fields the suspect rules read. */
function held(id: string, deliveryCount: number): Held {
  return { envelope: { id }, delivery: { deliveryCount } } as unknown as Held;
}

describe("crash suspects", () => {
  it("a delivery is a suspect once it was handed out before", () => {
    expect(isSuspect(held("a", 1))).toBe(false);
    expect(isSuspect(held("a", 2))).toBe(true);
  });

  it("picks the suspect closest to the limit, skipping first deliveries", () => {
    expect(pickSuspect([held("a", 2), held("b", 1), held("c", 4), held("d", 3)])).toBe(2);
    expect(pickSuspect([held("a", 1)])).toBe(-1);
  });

  it("breaks ties whatever order the broker handed the group out in, and afresh at each count", () => {
    const ids = Array.from({ length: 8 }, (_, i) => `job-${i}`);
    for (const count of [2, 3, 4]) {
      const group = ids.map((id) => held(id, count));
      const chosen = group[pickSuspect(group)];
      const reversed = [...group].reverse();
      expect(reversed[pickSuspect(reversed)]).toBe(chosen);
    }
    const winners = new Set([2, 3, 4, 5, 6].map((count) => ids[pickSuspect(ids.map((id) => held(id, count)))]));
    expect(winners.size).toBeGreaterThan(1);
  });
});
