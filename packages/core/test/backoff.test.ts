import { afterEach, describe, expect, it, vi } from "vitest";
import { type Backoff, compileBackoff, DEFAULT_BACKOFF } from "../src/backoff.js";
import { InvalidOptionsError } from "../src/errors.js";

afterEach(() => {
  vi.restoreAllMocks();
});

function invalidField(backoff: unknown): string {
  try {
    compileBackoff(backoff as Backoff);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionsError);
    return (error as InvalidOptionsError).field;
  }
  throw new Error("compileBackoff accepted an invalid backoff");
}

describe("exponential backoff", () => {
  it("without jitter doubles from base and stops at max", () => {
    const f = compileBackoff({ type: "exponential", base: "100ms", max: "1s", jitter: false });
    expect([1, 2, 3, 4, 5, 6, 7].map((a) => f(a, undefined))).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
  });

  it("never overflows for very large attempt numbers", () => {
    const f = compileBackoff({ type: "exponential", base: "1s", max: "1h", jitter: false });
    expect(f(1000, undefined)).toBe(3_600_000);
    expect(f(1_000_000, undefined)).toBe(3_600_000);
  });

  it("with jitter stays between half the raw delay and the raw delay", () => {
    const f = compileBackoff({ type: "exponential", base: 100, max: 5_000 });
    for (let attempt = 1; attempt <= 12; attempt++) {
      const raw = Math.min(5_000, 100 * 2 ** (attempt - 1));
      for (let i = 0; i < 50; i++) {
        const ms = f(attempt, undefined);
        expect(ms).toBeGreaterThanOrEqual(raw / 2);
        expect(ms).toBeLessThanOrEqual(raw);
      }
    }
  });

  it("with jitter uses the random number for the upper half only", () => {
    const f = compileBackoff({ type: "exponential", base: 1_000, max: 60_000 });
    vi.spyOn(Math, "random").mockReturnValue(0);
    expect(f(3, undefined)).toBe(2_000);
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    expect(f(3, undefined)).toBe(3_000);
    vi.spyOn(Math, "random").mockReturnValue(0.999999);
    expect(f(3, undefined)).toBeCloseTo(4_000, 0);
    expect(f(3, undefined)).toBeLessThan(4_000);
  });

  it("defaults to 1 s base, 1 h cap, jitter on", () => {
    const f = compileBackoff({ type: "exponential" });
    vi.spyOn(Math, "random").mockReturnValue(0);
    expect(f(1, undefined)).toBe(500);
    expect(f(40, undefined)).toBe(1_800_000);
    const d = compileBackoff(DEFAULT_BACKOFF);
    expect(d(1, undefined)).toBe(500);
  });

  it("takes duration strings", () => {
    const f = compileBackoff({ type: "exponential", base: "2s", max: "1m", jitter: false });
    expect(f(1, undefined)).toBe(2_000);
    expect(f(10, undefined)).toBe(60_000);
  });
});

describe("fixed and linear backoff", () => {
  it("fixed returns the same delay for every attempt", () => {
    const f = compileBackoff({ type: "fixed", delay: "5s" });
    expect([1, 2, 10, 100].map((a) => f(a, new Error("x")))).toEqual([5_000, 5_000, 5_000, 5_000]);
  });

  it("linear grows by step and is capped by max", () => {
    const f = compileBackoff({ type: "linear", step: "10s", max: "35s" });
    expect([1, 2, 3, 4, 5].map((a) => f(a, undefined))).toEqual([10_000, 20_000, 30_000, 35_000, 35_000]);
  });

  it("linear is capped at one hour by default", () => {
    const f = compileBackoff({ type: "linear", step: "20m" });
    expect(f(2, undefined)).toBe(2_400_000);
    expect(f(4, undefined)).toBe(3_600_000);
  });
});

describe("custom backoff functions", () => {
  it("receive the attempt and the error", () => {
    const seen: [number, unknown][] = [];
    const error = new Error("boom");
    const f = compileBackoff((attempt, e) => {
      seen.push([attempt, e]);
      return attempt * 7;
    });
    expect(f(3, error)).toBe(21);
    expect(seen).toEqual([[3, error]]);
  });

  it.each([
    [-5, 0],
    [Number.NaN, 0],
    [Number.POSITIVE_INFINITY, 0],
    [0, 0],
    [12.5, 12.5],
  ])("turn %s into %s", (returned, expected) => {
    const f = compileBackoff(() => returned);
    expect(f(1, undefined)).toBe(expected);
  });

  it("turn a non-number into 0", () => {
    const f = compileBackoff((() => "100") as unknown as Backoff);
    expect(f(1, undefined)).toBe(0);
  });
});

describe("invalid backoff", () => {
  it.each([
    [null, "backoff"],
    ["exponential", "backoff"],
    [42, "backoff"],
    [{ type: "quadratic" }, "backoff.type"],
    [{}, "backoff.type"],
    [{ type: "exponential", base: "soon" }, "backoff.base"],
    [{ type: "exponential", max: -1 }, "backoff.max"],
    [{ type: "fixed", delay: "abc" }, "backoff.delay"],
    [{ type: "fixed" }, "backoff.delay"],
    [{ type: "linear", step: Number.NaN }, "backoff.step"],
    [{ type: "linear", step: "1s", max: "later" }, "backoff.max"],
  ])("rejects %j naming %s", (backoff, field) => {
    expect(invalidField(backoff)).toBe(field);
  });

  it("prefixes the field given by the caller", () => {
    try {
      compileBackoff({ type: "fixed", delay: "x" }, "jobs.email.backoff");
      expect.unreachable();
    } catch (error) {
      expect((error as InvalidOptionsError).field).toBe("jobs.email.backoff.delay");
    }
  });
});
