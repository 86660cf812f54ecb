import { type Duration, parseDuration } from "./duration.js";
import { InvalidOptionsError } from "./errors.js";

/** Computes the delay before retry number `attempt` (1 = the first retry after a failure). */
export type BackoffFunction = (attempt: number, error: unknown) => number;

/** How long to wait before retrying a failed job. */
export type Backoff =
  | {
      /** delay = base × 2^(attempt−1), capped at `max`; with jitter (default) a random value between half and all of it. */
      readonly type: "exponential";
      /** @default "1s" */
      readonly base?: Duration;
      /** @default "1h" */
      readonly max?: Duration;
      /** @default true */
      readonly jitter?: boolean;
    }
  | {
      /** The same delay every time. */
      readonly type: "fixed";
      readonly delay: Duration;
    }
  | {
      /** delay = step × attempt, capped at `max`. */
      readonly type: "linear";
      readonly step: Duration;
      /** @default "1h" */
      readonly max?: Duration;
    }
  | BackoffFunction;

/** The default backoff: exponential from 1 s, capped at 1 h, with jitter. */
export const DEFAULT_BACKOFF: Backoff = { type: "exponential", base: "1s", max: "1h", jitter: true };

/**
 * Compiles a backoff description into a function, validating it once (at `defineJob`).
 * Jittered exponential uses "equal jitter": half the delay fixed, half random, so a retry never
 * comes back immediately but retries still spread out.
 */
export function compileBackoff(backoff: Backoff, field = "backoff"): BackoffFunction {
  if (typeof backoff === "function") {
    return (attempt, error) => {
      const ms = backoff(attempt, error);
      return Number.isFinite(ms) && ms > 0 ? ms : 0;
    };
  }
  if (typeof backoff !== "object" || backoff === null) {
    throw new InvalidOptionsError(field, "expected a function or { type: 'exponential' | 'fixed' | 'linear' }");
  }
  switch (backoff.type) {
    case "exponential": {
      const base = parseDuration(backoff.base ?? "1s", `${field}.base`);
      const max = parseDuration(backoff.max ?? "1h", `${field}.max`);
      const jitter = backoff.jitter ?? true;
      return (attempt) => {
        const raw = Math.min(max, base * 2 ** Math.min(attempt - 1, 52));
        return jitter ? raw / 2 + Math.random() * (raw / 2) : raw;
      };
    }
    case "fixed": {
      const delay = parseDuration(backoff.delay, `${field}.delay`);
      return () => delay;
    }
    case "linear": {
      const step = parseDuration(backoff.step, `${field}.step`);
      const max = parseDuration(backoff.max ?? "1h", `${field}.max`);
      return (attempt) => Math.min(max, step * attempt);
    }
    default:
      throw new InvalidOptionsError(
        `${field}.type`,
        `expected 'exponential', 'fixed' or 'linear', got ${String((backoff as { type: unknown }).type)}`,
      );
  }
}
