import { describe, expect, it } from "vitest";
import { IntrusiveList } from "../src/internal/list.js";

interface Item {
  readonly n: number;
  prev: Item | undefined;
  next: Item | undefined;
}

const item = (n: number): Item => ({ n, prev: undefined, next: undefined });
const ns = (list: IntrusiveList<Item>): number[] => [...list].map((i) => i.n);

describe("IntrusiveList", () => {
  it("keeps insertion order and its size through adds and deletes at the head, middle and tail", () => {
    const list = new IntrusiveList<Item>();
    const items = [1, 2, 3, 4].map(item);
    for (const i of items) list.add(i);
    expect(ns(list)).toEqual([1, 2, 3, 4]);
    expect(list.delete(items[1]!)).toBe(true);
    expect(list.delete(items[0]!)).toBe(true);
    expect(list.delete(items[3]!)).toBe(true);
    expect(ns(list)).toEqual([3]);
    expect(list.size).toBe(1);
    list.add(items[0]!);
    expect(ns(list)).toEqual([3, 1]);
    expect(list.delete(items[2]!)).toBe(true);
    expect(list.delete(items[0]!)).toBe(true);
    expect(ns(list)).toEqual([]);
    expect(list.size).toBe(0);
  });

  it("refuses to delete an item it does not hold (never added, or deleted already)", () => {
    const list = new IntrusiveList<Item>();
    const [x, y] = [1, 2].map(item) as [Item, Item];
    list.add(x);
    expect(list.delete(y)).toBe(false);
    expect(list.delete(x)).toBe(true);
    expect(list.delete(x)).toBe(false);
    expect(list.size).toBe(0);
  });

  it("lets the current item be deleted while iterating, and visits items added meanwhile", () => {
    const list = new IntrusiveList<Item>();
    for (const n of [1, 2, 3]) list.add(item(n));
    const seen: number[] = [];
    for (const i of list) {
      seen.push(i.n);
      list.delete(i);
      if (i.n === 2) list.add(item(4));
    }
    expect(seen).toEqual([1, 2, 3, 4]);
    expect(list.size).toBe(0);
  });
});
