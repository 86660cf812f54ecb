import { describe, expect, it } from "vitest";
import { sequenceOf } from "../src/internal/ack-subject.js";
import { HeldDeliveries, type Holdable } from "../src/internal/held-deliveries.js";

describe("ack subject parsing", () => {
  it("reads the stream sequence from the v1 form and from the newer form with domain, account hash and a random token", () => {
    expect(sequenceOf("$JS.ACK.JOBS.ready_q__p2.3.1042.977.1795703773827000000.12")).toBe("1042");
    expect(sequenceOf("$JS.ACK.hub.ACCHASH.JOBS.ready_q__p2.3.1042.977.1795703773827000000.12.x7Yz")).toBe("1042");
    expect(sequenceOf("$JS.ACK._.ACCHASH.JOBS.ready_q.1.7.7.1795703773827000000.0.r")).toBe("7");
    expect(sequenceOf("not.an.ack")).toBe("");
  });
});

class Item implements Holdable<Item> {
  prev: Item | undefined = undefined;
  next: Item | undefined = undefined;
  chained: Item | undefined = undefined;
  constructor(readonly seq: string) {}
}

describe("held deliveries", () => {
  it("finds held deliveries by stream sequence, including ones sharing a bucket, and forgets deleted ones", () => {
    const held = new HeldDeliveries<Item>();
    // 64 buckets at first: 1, 65, 129 and 2^32 + 1 share one.
    const items = ["1", "65", "129", String(2 ** 32 + 1), "2"].map((seq) => new Item(seq));
    for (const item of items) held.add(item);
    for (const item of items) expect(held.find(item.seq)).toBe(item);
    expect(held.find("3")).toBeUndefined();
    held.delete(items[1] as Item);
    expect(held.find("65")).toBeUndefined();
    expect(held.find("1")).toBe(items[0]);
    expect(held.find("129")).toBe(items[2]);
    held.delete(items[1] as Item); // twice: nothing happens
    held.delete(items[0] as Item);
    expect(held.find("1")).toBeUndefined();
    expect(held.find(String(2 ** 32 + 1))).toBe(items[3]);
    expect(held.size).toBe(3);
    expect(
      held
        .drain()
        .map((i) => i.seq)
        .sort(),
    ).toEqual(["129", "2", String(2 ** 32 + 1)]);
    expect(held.size).toBe(0);
    expect(held.find("2")).toBeUndefined();
  });

  it("keeps every delivery findable while it grows, and lists but never matches an unreadable sequence", () => {
    const held = new HeldDeliveries<Item>();
    const items = Array.from({ length: 1000 }, (_, i) => new Item(String(10_000 + i * 3)));
    const unreadable = new Item("");
    held.add(unreadable);
    for (const item of items) held.add(item);
    for (const item of items) expect(held.find(item.seq)).toBe(item);
    expect(held.find("")).toBeUndefined();
    for (const item of items.filter((_, i) => i % 2 === 0)) held.delete(item);
    items.forEach((item, i) => {
      expect(held.find(item.seq)).toBe(i % 2 === 0 ? undefined : item);
    });
    expect(held.size).toBe(501);
    expect(held.drain()).toHaveLength(501);
  });
});
