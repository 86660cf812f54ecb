/** How `bin/run.ts` splits tier A into lanes (src/lanes.ts). */
import { describe, expect, it } from "vitest";
import { planLanes } from "../src/lanes.js";

const measured: Record<string, number> = { a: 600, b: 300, c: 250, d: 200, e: 100, f: 50 };
const seconds = (f: string): number => measured[f] ?? 120;

describe("lanes", () => {
  it("puts every file in exactly one lane", () => {
    const files = [...Object.keys(measured), "new-suite"];
    const lanes = planLanes(files, 2, seconds);
    expect(lanes.flatMap((l) => l.files).sort()).toEqual([...files].sort());
  });

  it("gives each file to the lane with the least so far, longest first", () => {
    const lanes = planLanes(Object.keys(measured), 2, seconds);
    expect(lanes.map((l) => l.files)).toEqual([
      ["a", "e", "f"],
      ["b", "c", "d"],
    ]);
    expect(lanes.map((l) => l.seconds)).toEqual([750, 750]);
  });

  it("is the same split whatever the order of the listing", () => {
    const files = Object.keys(measured);
    expect(planLanes([...files].reverse(), 2, seconds)).toEqual(planLanes(files, 2, seconds));
  });

  it("runs everything in one lane when asked for one, and leaves out empty lanes", () => {
    expect(planLanes(["a", "b"], 1, seconds)).toEqual([{ files: ["a", "b"], seconds: 900 }]);
    expect(planLanes(["a"], 3, seconds)).toHaveLength(1);
    expect(() => planLanes(["a"], 0, seconds)).toThrow(RangeError);
  });
});
