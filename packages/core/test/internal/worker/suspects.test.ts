import { describe, expect, it } from "vitest";
import { decodeEnvelope, type Envelope, encodeEnvelope } from "../../../src/envelope.js";
import type { HeldDelivery } from "../../../src/internal/worker/held-delivery.js";
import { isSuspect, pickSuspect, suspectThreshold, withCarriedCount, withoutCarriedCount } from "../../../src/internal/worker/suspects.js";

/** Only the fields the suspect rules read. */
function held(id: string, count: number): HeldDelivery {
  return { envelope: { id }, count } as unknown as HeldDelivery;
}

const received: Envelope = {
  v: 1,
  id: "job-1",
  name: "crashy",
  queue: "q",
  payload: { n: 1 },
  attempt: 2,
  maxAttempts: 5,
  priority: "normal",
  enqueuedAt: 1,
  runAt: 2,
  timeout: 1000,
};

describe("crash suspects", () => {
  it("a delivery is a suspect from above half of maxDeliveries, never below its 2nd delivery", () => {
    expect(suspectThreshold(1)).toBe(2);
    expect(suspectThreshold(2)).toBe(2);
    expect(suspectThreshold(3)).toBe(2);
    expect(suspectThreshold(4)).toBe(3);
    expect(suspectThreshold(10)).toBe(6);
  });

  it("a delivery is a suspect once its count reaches the threshold", () => {
    expect(isSuspect(held("a", 1), 2)).toBe(false);
    expect(isSuspect(held("a", 2), 2)).toBe(true);
    expect(isSuspect(held("a", 5), 6)).toBe(false);
    expect(isSuspect(held("a", 6), 6)).toBe(true);
  });

  it("picks the suspect closest to the limit, skipping first deliveries", () => {
    expect(pickSuspect([held("a", 2), held("b", 1), held("c", 4), held("d", 3)], 2)).toBe(2);
    expect(pickSuspect([held("a", 1)], 2)).toBe(-1);
    expect(pickSuspect([held("a", 2), held("b", 3)], 4)).toBe(-1);
  });

  it("breaks ties whatever order the broker handed the group out in, and afresh at each count", () => {
    const ids = Array.from({ length: 8 }, (_, i) => `job-${i}`);
    for (const count of [2, 3, 4]) {
      const group = ids.map((id) => held(id, count));
      const chosen = group[pickSuspect(group, 2)];
      const reversed = [...group].reverse();
      expect(reversed[pickSuspect(reversed, 2)]).toBe(chosen);
    }
    const winners = new Set(
      [2, 3, 4, 5, 6].map(
        (count) =>
          ids[
            pickSuspect(
              ids.map((id) => held(id, count)),
              2,
            )
          ],
      ),
    );
    expect(winners.size).toBeGreaterThan(1);
  });

  it("a suspect released keeping its count carries its count but this delivery, and nothing else changes", () => {
    const back = decodeEnvelope(encodeEnvelope(withCarriedCount(held("job-1", 3), received)), 1_000_000);
    expect(back).toEqual({ ...received, priorDeliveries: 2 });
    // Released again on its next delivery (broker count 1, carried 2): the count stays 3.
    expect(withCarriedCount(held("job-1", 1 + (back.priorDeliveries ?? 0)), back).priorDeliveries).toBe(2);
  });

  it("a retry or a dead letter starts counting afresh", () => {
    const carried = withCarriedCount(held("job-1", 4), received);
    expect(withoutCarriedCount(carried)).toEqual(received);
    expect("priorDeliveries" in withoutCarriedCount(carried)).toBe(false);
    expect(withoutCarriedCount(received)).toBe(received);
  });
});
