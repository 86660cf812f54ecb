import { InvalidOptionsError } from "./errors.js";

/** A duration: milliseconds as a number, or a string such as "90s", "3h 30m", "1.5 days". */
export type Duration = number | string;

const MS_PER: Record<string, number> = Object.assign(Object.create(null) as Record<string, number>, {
  ns: 1e-6,
  nanosecond: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  microsecond: 1e-3,
  ms: 1,
  millisecond: 1,
  s: 1_000,
  sec: 1_000,
  second: 1_000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hour: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  w: 604_800_000,
  wk: 604_800_000,
  week: 604_800_000,
  M: 2_629_746_000, // 30.436875 days: a Gregorian year / 12
  mo: 2_629_746_000,
  month: 2_629_746_000,
  y: 31_557_600_000, // 365.25 days
  yr: 31_557_600_000,
  year: 31_557_600_000,
});

const TOKEN = /\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Zµ]+)\s*,?/y;

function unitFactor(unit: string): number | undefined {
  // "M" (month) and "m" (minute) differ only by case; every other unit is case-insensitive.
  if (unit === "M" || unit === "m") return MS_PER[unit];
  let u = unit.toLowerCase();
  let f = MS_PER[u];
  if (f === undefined && u.length > 2 && u.endsWith("s")) {
    u = u.slice(0, -1);
    f = MS_PER[u];
  }
  return f;
}

/**
 * Parses a duration to milliseconds. Numbers are milliseconds. Strings are one or more
 * `<number><unit>` terms ("1h 30m", "2 days", "250ms"); a bare numeric string is milliseconds.
 * Throws `InvalidOptionsError` naming `field` for anything else, negatives, or non-finite values.
 */
export function parseDuration(value: Duration, field = "duration"): number {
  let ms: number;
  if (typeof value === "number") {
    ms = value;
  } else if (typeof value === "string") {
    ms = parseDurationString(value, field);
  } else {
    throw new InvalidOptionsError(field, `expected milliseconds or a duration string, got ${typeof value}`);
  }
  if (!Number.isFinite(ms) || ms < 0) {
    throw new InvalidOptionsError(field, `expected a finite, non-negative duration, got ${String(value)}`);
  }
  return ms;
}

function parseDurationString(text: string, field: string): number {
  const trimmed = text.trim();
  if (trimmed === "") throw new InvalidOptionsError(field, "empty duration string");
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  let total = 0;
  let index = 0;
  TOKEN.lastIndex = 0;
  while (index < trimmed.length) {
    TOKEN.lastIndex = index;
    const match = TOKEN.exec(trimmed);
    if (match === null) {
      throw new InvalidOptionsError(field, `cannot parse duration "${text}"`);
    }
    const factor = unitFactor(match[2] as string);
    if (factor === undefined) {
      throw new InvalidOptionsError(field, `unknown unit "${match[2]}" in duration "${text}"`);
    }
    total += Number(match[1]) * factor;
    index = TOKEN.lastIndex;
  }
  return Math.round(total * 1e6) / 1e6;
}
