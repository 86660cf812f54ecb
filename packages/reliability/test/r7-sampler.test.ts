/**
 * R7's handle count per sample (processes/sampler.ts): the lowest reading of a window, readings
 * near a proxy reset left out. Synthetic readings, 100 ms apart over 2 s; a reset at 1,000 ms cuts
 * five requests (a socket and four SDK timers each, as SQS's long polls) for 200 ms.
 */
import { describe, expect, it } from "vitest";
import { NEAR_RESET_AFTER_MS, type Reading, type ResetNotice, summariseWindow } from "../src/processes/sampler.js";

const steady = [...Array(3).fill("PipeWrap"), ...Array(5).fill("TCPSocketWrap"), ...Array(25).fill("Timeout")];
const cut = [...Array(3).fill("PipeWrap"), ...Array(10).fill("Timeout")];
const reset: ResetNotice = { type: "reset-notice", from: 1_000, to: 1_010 };

/** Readings at 0, 100, …, 1,900 ms: `cut` from 1,000 to 1,199 ms, `steady` otherwise, plus `extra` handles in every reading. */
function window(extra: readonly string[] = []): Reading[] {
  return Array.from({ length: 20 }, (_, i) => {
    const t = i * 100;
    return { t, info: [...(t >= 1_000 && t < 1_200 ? cut : steady), ...extra] };
  });
}

describe("R7 sampler: handle count of one window", () => {
  it("without a reset, the count is the lowest reading (the dip included)", () => {
    const w = summariseWindow(window(), []);
    expect(w.low).toHaveLength(cut.length);
    expect(w.lowAny).toHaveLength(cut.length);
    expect(w.away).toBe(20);
  });

  it("leaves out the readings near a reset, and still reports the lowest of all", () => {
    const w = summariseWindow(window(), [reset]);
    expect(w.low).toHaveLength(steady.length);
    expect(w.lowAny).toHaveLength(cut.length);
    expect(w.high).toHaveLength(steady.length);
    // 800 … 1,600 ms are near the reset (200 ms before it, 600 ms after its end).
    expect(w.away).toBe(20 - 9);
  });

  it("a leaked handle is in the count with or without resets", () => {
    const leak = ["TCPSocketWrap", "Timeout"];
    expect(summariseWindow(window(leak), [reset]).low).toHaveLength(steady.length + leak.length);
    expect(summariseWindow(window(leak), []).low).toHaveLength(cut.length + leak.length);
  });

  it("a window near a reset all along falls back to every reading", () => {
    const w = summariseWindow(window(), [{ type: "reset-notice", from: 0, to: 2_000 - NEAR_RESET_AFTER_MS }]);
    expect(w.away).toBe(0);
    expect(w.low).toHaveLength(cut.length);
  });
});
