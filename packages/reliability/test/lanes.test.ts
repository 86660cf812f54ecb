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
    const lanes = planLanes(Object.keys(measured), 2, seconds, []);
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

  it("keeps the files of a group in one lane, placed by their summed length", () => {
    const lanes = planLanes(Object.keys(measured), 2, seconds, [["c", "e", "f"]]);
    // Units longest first: a 600, c+e+f 400, b 300, d 200; each to the lane with the least so far.
    expect(lanes.map((l) => l.files)).toEqual([
      ["a", "d"],
      ["c", "e", "f", "b"],
    ]);
    expect(lanes.map((l) => l.seconds)).toEqual([800, 700]);
  });

  it("puts R1, R1 with a store and R11 in one lane in the real split", () => {
    const real = [
      "r4-crash-loops.test.ts",
      "r1-kill-workers.test.ts",
      "r13-r1-store.test.ts",
      "r11-negative-controls.test.ts",
      "r3-network-faults.test.ts",
      "r2-broker-restart.test.ts",
    ];
    const lanes = planLanes(
      real.map((f) => `/x/test/${f}`),
      2,
    );
    const lane = lanes.find((l) => l.files.some((f) => f.endsWith("r1-kill-workers.test.ts")));
    expect(lane?.files.filter((f) => /r1-kill|r13-r1|r11-neg/.test(f))).toHaveLength(3);
  });
});
