import type { DeadLetterReason, On } from "./broker.js";
import type { Metadata, TraceContext } from "./envelope.js";
import type { SerializedError } from "./errors.js";
import type { EventEntries, Logger, Reporter } from "./logger.js";
import type { Priority } from "./priority.js";

/** What events say about a job. Never the payload. */
export interface JobInfo {
  /** Job id. */
  readonly id: string;
  /** Job name. */
  readonly name: string;
  /** Logical queue. */
  readonly queue: string;
  /** This attempt, from 1. */
  readonly attempt: number;
  /** Attempts allowed. */
  readonly maxAttempts: number;
  /** Priority. */
  readonly priority: Priority;
  /** First enqueued, ms since the epoch. */
  readonly enqueuedAt: number;
  /** Due time of this attempt, ms since the epoch. */
  readonly runAt: number;
  /** Caller metadata, if any. */
  readonly metadata?: Metadata;
  /**
   * The W3C trace context the job carries, if any: its enqueue's `send` span (with `tracing` on the
   * client) or the `trace` given to `enqueue`. Every attempt's `process` span is in this trace.
   */
  readonly trace?: TraceContext;
}

/** Events of a client. */
export interface ClientEventMap {
  /** The broker durably accepted the job. */
  "job.enqueued": { readonly job: JobInfo; readonly duplicate: boolean; readonly durationMs: number };
}

/** Events of a worker, one per transition of a job. */
export interface WorkerEventMap {
  /** A handler started; `waitMs` is the time since the job was due. */
  "job.started": { readonly job: JobInfo; readonly waitMs: number };
  /** The handler resolved and the job was acknowledged. */
  "job.succeeded": { readonly job: JobInfo; readonly durationMs: number };
  /** The handler threw or timed out (a `job.retrying` or `job.dead-lettered` follows). */
  "job.failed": { readonly job: JobInfo; readonly durationMs: number; readonly error: SerializedError; readonly willRetry: boolean };
  /** The job is being put back for attempt + 1 after `delayMs` (emitted before the broker call, so it precedes the next start). */
  "job.retrying": { readonly job: JobInfo; readonly delayMs: number; readonly error: SerializedError };
  /** The job was moved to the dead letters. `job` is absent when the message could not be decoded. */
  "job.dead-lettered": { readonly job?: JobInfo; readonly reason: DeadLetterReason; readonly error: SerializedError };
  /** A delivery arrived before its runAt (or while this worker still runs a timed-out attempt of it) and was put back without counting an attempt. */
  "job.deferred": { readonly job: JobInfo; readonly delayMs: number };
  /** A running job was cancelled (`client.cancel`): its handler failed after its signal fired, and its record ends `cancelled`. Store only. */
  "job.cancelled": { readonly job: JobInfo; readonly durationMs: number };
  /** The worker could no longer keep or settle a delivery; the broker will redeliver it. */
  "job.lease-lost": { readonly job?: JobInfo; readonly error: SerializedError };
  /**
   * A handler that timed out still runs `overdueMs` after its timeout (at least the worker's
   * `overdueAfter`): it ignores its signal. Its attempt failed at the timeout; it keeps its
   * concurrency slot until it ends. Emitted once per attempt.
   */
  "job.overdue": { readonly job: JobInfo; readonly timeoutMs: number; readonly overdueMs: number };
  /** An internal error the worker survived (e.g. a failed ack). */
  error: { readonly error: SerializedError; readonly job?: JobInfo };
}

/** Every worker event name, in lifecycle order (for loggers and tests that record them all). */
export const WORKER_EVENTS: readonly (keyof WorkerEventMap)[] = [
  "job.started",
  "job.succeeded",
  "job.failed",
  "job.retrying",
  "job.dead-lettered",
  "job.deferred",
  "job.cancelled",
  "job.lease-lost",
  "job.overdue",
  "error",
];

type Listener = ((event: never) => void) & { readonly [kLogsTo]?: Logger };

/**
 * Marks a listener that only passes events on to a logger (a worker forwarding its broker's
 * warnings). An emitter calls one such listener per logger, and none for its own logger, so a
 * logger given to a broker and to the workers on it gets each entry once.
 */
export const kLogsTo: unique symbol = Symbol.for("@jobs/core/logs-to");

/** How an emitter reports: its instance's reporter and which events become entries. */
export interface EmitterReporting<M> {
  /** The instance's reporter. */
  readonly reporter: Reporter;
  /** Builders of the entries, per reported event. */
  readonly entries: EventEntries<M>;
}

/**
 * A minimal typed event emitter; a listener that throws is reported, never breaks the emitter.
 * With `reporting`, the reported events also go to the reporter (a logger, else the console when
 * nobody listens): events nobody hears are no longer lost.
 */
export class Emitter<M> {
  readonly #listeners = new Map<string, Set<Listener>>();
  readonly #reporting: EmitterReporting<M> | undefined;

  constructor(reporting?: EmitterReporting<M>) {
    this.#reporting = reporting;
  }

  /** Subscribe; returns an unsubscribe function. */
  readonly on: On<M> = (event, listener) => {
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener as Listener);
    return () => {
      set.delete(listener as Listener);
    };
  };

  /** True when someone listens to `event` (lets hot paths skip building event objects). */
  has(event: keyof M & string): boolean {
    const set = this.#listeners.get(event);
    return set !== undefined && set.size > 0;
  }

  /** Call every listener of `event` with `data`. */
  emit<E extends keyof M & string>(event: E, data: M[E]): void {
    const set = this.#listeners.get(event);
    const entry = this.#reporting?.entries[event];
    if (entry !== undefined) {
      const reporter = (this.#reporting as EmitterReporting<M>).reporter;
      reporter.report(entry(data, reporter.source), set !== undefined && set.size > 0);
    }
    if (set === undefined) return;
    let logged: Logger[] | undefined;
    for (const listener of set) {
      const logsTo = listener[kLogsTo];
      if (logsTo !== undefined) {
        // One entry per logger: skip a forwarder of this emitter's own logger or of one already called.
        if (logsTo === this.#reporting?.reporter.logger || logged?.includes(logsTo)) continue;
        if (logged === undefined) logged = [logsTo];
        else logged.push(logsTo);
      }
      try {
        (listener as (event: M[E]) => void)(data);
      } catch (error) {
        process.emitWarning(`[jobs] a listener of "${event}" threw: ${(error as Error)?.message ?? String(error)}`);
      }
    }
  }
}
