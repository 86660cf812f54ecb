import { afterEach, describe, expect, it, vi } from "vitest";
import { Emitter } from "../src/events.js";

interface Map1 {
  a: { n: number };
  b: { s: string };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("Emitter", () => {
  it("calls listeners of the emitted event only, in subscription order", () => {
    const emitter = new Emitter<Map1>();
    const calls: string[] = [];
    emitter.on("a", (e) => calls.push(`first ${e.n}`));
    emitter.on("a", (e) => calls.push(`second ${e.n}`));
    emitter.on("b", (e) => calls.push(`b ${e.s}`));
    emitter.emit("a", { n: 1 });
    expect(calls).toEqual(["first 1", "second 1"]);
  });

  it("unsubscribes with the returned function and reports listeners with has()", () => {
    const emitter = new Emitter<Map1>();
    expect(emitter.has("a")).toBe(false);
    const seen: number[] = [];
    const off = emitter.on("a", (e) => seen.push(e.n));
    expect(emitter.has("a")).toBe(true);
    expect(emitter.has("b")).toBe(false);
    emitter.emit("a", { n: 1 });
    off();
    off();
    emitter.emit("a", { n: 2 });
    expect(seen).toEqual([1]);
    expect(emitter.has("a")).toBe(false);
  });

  it("works with `on` detached from the emitter", () => {
    const emitter = new Emitter<Map1>();
    const { on } = emitter;
    const seen: string[] = [];
    on("b", (e) => seen.push(e.s));
    emitter.emit("b", { s: "x" });
    expect(seen).toEqual(["x"]);
  });

  it("reports a throwing listener as a process warning and keeps calling the others", () => {
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    const emitter = new Emitter<Map1>();
    const seen: number[] = [];
    emitter.on("a", () => {
      throw new Error("listener bug");
    });
    emitter.on("a", (e) => seen.push(e.n));
    expect(() => emitter.emit("a", { n: 3 })).not.toThrow();
    expect(seen).toEqual([3]);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]?.[0])).toContain('listener of "a" threw: listener bug');
  });

  it("emits to nobody without error", () => {
    expect(() => new Emitter<Map1>().emit("b", { s: "" })).not.toThrow();
  });
});
