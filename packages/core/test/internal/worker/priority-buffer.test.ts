import { describe, expect, it } from "vitest";
import type { HeldDelivery } from "../../../src/internal/worker/held-delivery.js";
import { nextLevel, PriorityBuffer } from "../../../src/internal/worker/priority-buffer.js";

/** Only the fields the buffer reads. */
function held(id: string, level: number, bufferedAt: number): HeldDelivery {
  return { envelope: { id }, level, bufferedAt } as unknown as HeldDelivery;
}

const ids = (items: Iterable<HeldDelivery>): string[] => [...items].map((i) => i.envelope.id);

describe("nextLevel", () => {
  it("is -1 when nothing is buffered", () => {
    expect(nextLevel([[], [], [], [], []], 0)).toBe(-1);
  });

  it("takes the highest level first while no head has aged", () => {
    const levels = [[held("low", 0, 10)], [], [held("normal", 2, 20)], [held("high", 3, 30)], []];
    expect(nextLevel(levels, 5)).toBe(3);
  });

  it("takes an aged head before higher levels, the oldest aged head first", () => {
    const levels = [[held("low", 0, 10)], [held("lower", 1, 5)], [held("normal", 2, 20)], [], [held("critical", 4, 1)]];
    // Heads buffered at or before 10 have aged: critical (1) is the oldest of them.
    expect(nextLevel(levels, 10)).toBe(4);
    const withoutCritical = [[held("low", 0, 10)], [held("lower", 1, 5)], [held("normal", 2, 20)], [], []];
    expect(nextLevel(withoutCritical, 10)).toBe(1);
    // Aged exactly at the limit counts.
    expect(nextLevel([[held("low", 0, 10)], [], [held("normal", 2, 20)], [], []], 10)).toBe(0);
    expect(nextLevel([[held("low", 0, 10)], [], [held("normal", 2, 20)], [], []], 9)).toBe(2);
  });
});

describe("PriorityBuffer", () => {
  it("starts higher priorities first and each level in arrival order", () => {
    const buffer = new PriorityBuffer(60_000);
    for (const item of [held("n1", 2, 100), held("l1", 0, 101), held("h1", 3, 102), held("n2", 2, 103), held("h2", 3, 104)]) {
      buffer.push(item);
    }
    expect(buffer.size).toBe(5);
    const agedBefore = buffer.agedBefore(200);
    const order: string[] = [];
    for (let item = buffer.shift(agedBefore); item !== undefined; item = buffer.shift(agedBefore)) order.push(item.envelope.id);
    expect(order).toEqual(["h1", "h2", "n1", "n2", "l1"]);
    expect(buffer.size).toBe(0);
  });

  it("starts a job that waited longer than priorityAging before younger urgent ones", () => {
    const buffer = new PriorityBuffer(1_000);
    buffer.push(held("old-low", 0, 0));
    buffer.push(held("urgent", 4, 900));
    buffer.push(held("urgent-2", 4, 1_500));
    // At 999 nothing has waited 1 s: the urgent one first.
    expect(buffer.shift(buffer.agedBefore(999))?.envelope.id).toBe("urgent");
    // At 1000 the low one has waited 1 s: it goes before the next urgent one.
    expect(buffer.shift(buffer.agedBefore(1_000))?.envelope.id).toBe("old-low");
    expect(buffer.shift(buffer.agedBefore(1_000))?.envelope.id).toBe("urgent-2");
    expect(buffer.shift(buffer.agedBefore(1_000))).toBeUndefined();
  });

  it("finds in the highest level where the pick chooses, and removes single items", () => {
    const buffer = new PriorityBuffer(60_000);
    const [a, b, c] = [held("a", 1, 0), held("b", 3, 0), held("c", 3, 0)];
    for (const item of [a, b, c]) buffer.push(item);
    expect(buffer.find((level) => level.findIndex((i) => i.envelope.id !== "b"))).toBe(c);
    expect(buffer.find((level) => level.findIndex((i) => i.envelope.id === "a"))).toBe(a);
    expect(buffer.find(() => -1)).toBeUndefined();
    expect(buffer.remove(c)).toBe(true);
    expect(buffer.remove(c)).toBe(false);
    expect(buffer.size).toBe(2);
    expect(ids(buffer)).toEqual(["a", "b"]);
  });

  it("removeWhere and drain empty it lowest level first, keeping the count", () => {
    const buffer = new PriorityBuffer(60_000);
    for (const item of [held("x1", 2, 0), held("y1", 0, 0), held("x2", 2, 0), held("y2", 4, 0), held("x3", 0, 0)]) buffer.push(item);
    // Each level from its tail.
    expect(ids(buffer.removeWhere((i) => i.envelope.id.startsWith("x")))).toEqual(["x3", "x2", "x1"]);
    expect(buffer.size).toBe(2);
    buffer.push(held("z", 0, 0));
    expect(ids(buffer.drain())).toEqual(["y1", "z", "y2"]);
    expect(buffer.size).toBe(0);
    expect(ids(buffer)).toEqual([]);
  });
});
