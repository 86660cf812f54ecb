import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { coalesceWrites } from "../src/adapter/coalesce.js";

/** A Writable that records how its chunks reach the sink: one entry per `_write` or `_writev` call. */
function recordingStream(): { stream: Writable; calls: string[][] } {
  const calls: string[][] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      calls.push([chunk.toString()]);
      callback();
    },
    writev(chunks, callback) {
      calls.push(chunks.map((c) => (c.chunk as Buffer).toString()));
      callback();
    },
  });
  return { stream, calls };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("coalesceWrites", () => {
  it("sends the writes of one turn, microtasks included, in one call, in order", async () => {
    const { stream, calls } = recordingStream();
    expect(coalesceWrites(stream)).toBe(true);
    stream.write("a");
    stream.write("b");
    await Promise.resolve();
    stream.write("c");
    expect(calls).toEqual([]);
    await tick();
    expect(calls).toEqual([["a", "b", "c"]]);
    stream.write("d");
    await tick();
    expect(calls).toEqual([["a", "b", "c"], ["d"]]);
  });

  it("without it, each write is its own call (what the helper changes)", async () => {
    const { stream, calls } = recordingStream();
    stream.write("a");
    stream.write("b");
    await tick();
    expect(calls.length).toBeGreaterThan(1);
  });

  it("is harmless twice and refuses what is not a corkable stream", async () => {
    const { stream, calls } = recordingStream();
    expect(coalesceWrites(stream)).toBe(true);
    expect(coalesceWrites(stream)).toBe(true);
    stream.write("a");
    stream.write("b");
    await tick();
    expect(calls).toEqual([["a", "b"]]);
    expect(coalesceWrites(undefined)).toBe(false);
    expect(coalesceWrites({ write() {} })).toBe(false);
  });
});
