/**
 * Test helpers: wait on conditions or events instead of sleeping, and assert on what a client
 * enqueued (by job, payload, scheduled window and count).
 */
import { AssertionError } from "node:assert";
import { isDeepStrictEqual } from "node:util";
import type { On } from "../broker.js";
import { type Client, kTap } from "../client.js";
import type { JobDefinition } from "../define-job.js";
import type { Envelope } from "../envelope.js";

/** Options of `waitFor`. */
export interface WaitForOptions {
  /** Give up after this many ms. @default 5000 */
  readonly timeout?: number;
  /** Poll interval for conditions, in ms. @default 10 */
  readonly interval?: number;
  /** Text for the timeout error. */
  readonly message?: string;
}

/**
 * Resolves with the first truthy value `condition` returns (it may be async), polling every
 * `interval` ms; rejects after `timeout` ms with the last error the condition threw, if any.
 */
export async function waitFor<T>(condition: () => T | Promise<T>, options: WaitForOptions = {}): Promise<NonNullable<T>> {
  const timeout = options.timeout ?? 5_000;
  const interval = options.interval ?? 10;
  const deadline = Date.now() + timeout;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const reason = lastError === undefined ? "" : `: ${(lastError as Error)?.message ?? String(lastError)}`;
      throw new Error(`${options.message ?? "waitFor timed out"} after ${timeout} ms${reason}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** Anything with the library's `on(event, listener)` shape: a client, a worker, a broker. */
export interface EventSource<M> {
  /** Subscribe; returns an unsubscribe function. */
  readonly on: On<M>;
}

/**
 * Resolves with the first `event` from `source` that matches `predicate` (every one when omitted).
 * Subscribe before triggering the action you wait for.
 */
export function waitForEvent<M, E extends keyof M & string>(
  source: EventSource<M>,
  event: E,
  predicate: (data: M[E]) => boolean = () => true,
  options: { readonly timeout?: number } = {},
): Promise<M[E]> {
  const timeout = options.timeout ?? 5_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`waitForEvent("${event}") timed out after ${timeout} ms`));
    }, timeout);
    const off = source.on(event, (data) => {
      if (!predicate(data)) return;
      clearTimeout(timer);
      off();
      resolve(data);
    });
  });
}

/** What to look for in `assertEnqueued`. */
export interface EnqueuedMatch<I> {
  /** Deep-equal payload, or a predicate on it. */
  readonly payload?: I | ((payload: I) => boolean);
  /** Logical queue. */
  readonly queue?: string;
  /** The job must be due within [from, to] (Dates or ms since the epoch, inclusive). */
  readonly scheduledBetween?: readonly [Date | number, Date | number];
  /** Exactly this many matching jobs. @default at least one */
  readonly count?: number;
}

/** A recorded enqueue. */
export interface RecordedJob {
  /** The envelope as accepted. */
  readonly envelope: Envelope;
  /** The broker reported it as a duplicate. */
  readonly duplicate: boolean;
}

/** Records what a client enqueued, for assertions. */
export interface EnqueueRecorder {
  /** Everything recorded, or only jobs of one definition. */
  jobs<I>(job?: JobDefinition<I, unknown>): RecordedJob[];
  /** Throws an `AssertionError` unless matching jobs were enqueued. Returns the matches. */
  assertEnqueued<I>(job: JobDefinition<I, unknown>, match?: EnqueuedMatch<I>): RecordedJob[];
  /** Throws an `AssertionError` if a matching job was enqueued. */
  assertNotEnqueued<I>(job: JobDefinition<I, unknown>, match?: Omit<EnqueuedMatch<I>, "count">): void;
  /** Forget what was recorded. */
  clear(): void;
  /** Stop recording. */
  stop(): void;
}

/** Starts recording every job `client` gets accepted from now on. */
export function recordEnqueued(client: Client): EnqueueRecorder {
  const recorded: RecordedJob[] = [];
  const stop = client[kTap]((envelope, duplicate) => {
    recorded.push({ envelope, duplicate });
  });
  const matching = <I>(job: JobDefinition<I, unknown>, match: Omit<EnqueuedMatch<I>, "count">): RecordedJob[] =>
    recorded.filter(({ envelope: e }) => {
      if (e.name !== job.name) return false;
      if (match.queue !== undefined && e.queue !== match.queue) return false;
      if (match.payload !== undefined) {
        const p = match.payload;
        if (typeof p === "function" ? !(p as (x: I) => boolean)(e.payload as I) : !isDeepStrictEqual(e.payload, p)) return false;
      }
      if (match.scheduledBetween !== undefined) {
        const [from, to] = match.scheduledBetween.map((t) => (t instanceof Date ? t.getTime() : t)) as [number, number];
        if (e.runAt < from || e.runAt > to) return false;
      }
      return true;
    });
  return {
    jobs: (job) => (job === undefined ? [...recorded] : recorded.filter((r) => r.envelope.name === job.name)),
    assertEnqueued(job, match = {}) {
      const found = matching(job, match);
      const ok = match.count === undefined ? found.length > 0 : found.length === match.count;
      if (!ok) {
        const seen = recorded
          .filter((r) => r.envelope.name === job.name)
          .map((r) => ({ payload: r.envelope.payload, runAt: r.envelope.runAt, queue: r.envelope.queue }));
        throw new AssertionError({
          message: `expected ${match.count ?? "at least 1"} "${job.name}" job(s) matching, found ${found.length}; enqueued "${job.name}" jobs: ${JSON.stringify(seen).slice(0, 2000)}`,
          actual: found.length,
          expected: match.count ?? 1,
          operator: "assertEnqueued",
        });
      }
      return found;
    },
    assertNotEnqueued(job, match = {}) {
      const found = matching(job, match);
      if (found.length > 0) {
        throw new AssertionError({
          message: `expected no "${job.name}" job matching, found ${found.length}`,
          actual: found.length,
          expected: 0,
          operator: "assertNotEnqueued",
        });
      }
    },
    clear: () => {
      recorded.length = 0;
    },
    stop,
  };
}

/** A process warning of the library's (its `code` starts with `JOBS_`): a deprecated option, a config warning. */
export interface JobsWarning {
  /** `DeprecationWarning`, `Warning`, … */
  readonly name: string;
  readonly code: string;
  readonly message: string;
}

/**
 * Runs `act` and resolves with the library's process warnings it emitted (codes starting with
 * `JOBS_`), in order. Warnings are delivered on a later turn: this waits for a marker warning
 * emitted right after `act`, so it needs no sleep. Others' warnings (a client library's) are left out.
 */
export async function jobsWarningsOf(act: () => void): Promise<JobsWarning[]> {
  const seen: Error[] = [];
  const marker = `jobs-warnings-marker-${Math.random()}`;
  const done = new Promise<void>((resolve) => {
    const listener = (warning: Error): void => {
      if (warning.message !== marker) seen.push(warning);
      else {
        process.off("warning", listener);
        resolve();
      }
    };
    process.on("warning", listener);
  });
  act();
  process.emitWarning(marker);
  await done;
  return seen
    .map((w) => ({ name: w.name, code: String((w as { code?: unknown }).code ?? ""), message: w.message }))
    .filter((w) => w.code.startsWith("JOBS_"));
}

/** Lines printed through `console.warn` and `console.error` while captured (see `captureConsole`). */
export interface CapturedConsole {
  /** One string per `console.warn` call: its arguments joined by spaces, objects as JSON. */
  readonly warned: string[];
  /** Likewise for `console.error`. */
  readonly errored: string[];
  /** Puts the console back. */
  restore(): void;
}

/**
 * Captures `console.warn` and `console.error` (nothing reaches the terminal) until `restore()`:
 * for asserting what the library prints when no logger or listener is given (docs/concepts/logging.md).
 * Works under any test runner; call `restore()` in an `afterEach`.
 */
export function captureConsole(): CapturedConsole {
  const warned: string[] = [];
  const errored: string[] = [];
  const line = (args: unknown[]): string => args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ");
  const { warn, error } = console;
  console.warn = (...args: unknown[]) => {
    warned.push(line(args));
  };
  console.error = (...args: unknown[]) => {
    errored.push(line(args));
  };
  return {
    warned,
    errored,
    restore: () => {
      console.warn = warn;
      console.error = error;
    },
  };
}
