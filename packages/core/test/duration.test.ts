import { describe, expect, it } from "vitest";
import { parseDuration } from "../src/duration.js";
import { InvalidOptionsError } from "../src/errors.js";

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

function invalid(value: unknown, field = "duration"): InvalidOptionsError {
  let caught: unknown;
  try {
    parseDuration(value as number | string, field);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(InvalidOptionsError);
  const error = caught as InvalidOptionsError;
  expect(error.code).toBe("invalid-options");
  expect(error.field).toBe(field);
  expect(error.message).toContain(`"${field}"`);
  return error;
}

describe("parseDuration", () => {
  it("takes numbers as milliseconds, fractions included", () => {
    expect(parseDuration(0)).toBe(0);
    expect(parseDuration(1500)).toBe(1500);
    expect(parseDuration(0.25)).toBe(0.25);
  });

  it("takes a bare numeric string as milliseconds", () => {
    expect(parseDuration("250")).toBe(250);
    expect(parseDuration(" 1.5 ")).toBe(1.5);
  });

  it.each([
    ["90s", 90 * SECOND],
    ["3h 30m", 3.5 * HOUR],
    ["3h30m", 3.5 * HOUR],
    ["1 day", DAY],
    ["2 weeks", 14 * DAY],
    ["1.5h", 1.5 * HOUR],
    [".5s", 500],
    ["250ms", 250],
    ["10us", 0.01],
    ["10µs", 0.01],
    ["5ns", 0.000005],
    ["1m", MINUTE],
    ["1M", 30.436875 * DAY],
    ["1mo", 30.436875 * DAY],
    ["2 months", 2 * 30.436875 * DAY],
    ["1y", 365.25 * DAY],
    ["1 year", 365.25 * DAY],
    ["2 yrs", 2 * 365.25 * DAY],
  ])("parses %j", (text, expected) => {
    expect(parseDuration(text)).toBeCloseTo(expected, 9);
  });

  it("accepts long, plural and capitalised unit names", () => {
    expect(parseDuration("2 hours")).toBe(2 * HOUR);
    expect(parseDuration("1 Hour")).toBe(HOUR);
    expect(parseDuration("3 minutes")).toBe(3 * MINUTE);
    expect(parseDuration("5 mins")).toBe(5 * MINUTE);
    expect(parseDuration("10 seconds")).toBe(10 * SECOND);
    expect(parseDuration("4 secs")).toBe(4 * SECOND);
    expect(parseDuration("7 milliseconds")).toBe(7);
    expect(parseDuration("3 days")).toBe(3 * DAY);
    expect(parseDuration("2 hrs")).toBe(2 * HOUR);
    expect(parseDuration("1 WEEK")).toBe(7 * DAY);
    expect(parseDuration("1H")).toBe(HOUR);
    expect(parseDuration("1000 microseconds")).toBe(1);
    expect(parseDuration("1000000 nanoseconds")).toBe(1);
  });

  it("keeps minutes (m) and months (M) apart but folds the case of longer names", () => {
    expect(parseDuration("1m")).not.toBe(parseDuration("1M"));
    expect(parseDuration("1 MIN")).toBe(MINUTE);
    expect(parseDuration("1 Month")).toBe(parseDuration("1M"));
    expect(parseDuration("1MS")).toBe(1);
  });

  it("adds up terms separated by spaces or commas", () => {
    expect(parseDuration("1h, 30m")).toBe(1.5 * HOUR);
    expect(parseDuration("1d,2h,3m,4s")).toBe(DAY + 2 * HOUR + 3 * MINUTE + 4 * SECOND);
    expect(parseDuration("1 day 2 hours")).toBe(DAY + 2 * HOUR);
    expect(parseDuration("  90s  ")).toBe(90 * SECOND);
  });

  it.each([
    [""],
    ["   "],
    ["abc"],
    ["5 parsecs"],
    ["-1s"],
    ["-5"],
    ["1h -30m"],
    ["1h,,30m"],
    ["1,5s"],
    ["s"],
    ["1e3"],
    ["Infinity"],
    ["NaN"],
  ])("rejects %j naming the field", (text) => {
    invalid(text, "delay");
  });

  it("names the unknown unit", () => {
    expect(invalid("5 parsecs", "timeout").message).toContain("parsecs");
  });

  it.each([[Number.NaN], [Number.POSITIVE_INFINITY], [Number.NEGATIVE_INFINITY], [-1], [{}], [null], [undefined], [[5]], [true], [10n]])(
    "rejects the non-duration value %s",
    (value) => {
      invalid(value, "lease");
    },
  );

  it("uses the field name 'duration' when none is given", () => {
    invalid("nope");
  });
});
