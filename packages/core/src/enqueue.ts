/**
 * What an enqueue takes and gives back: the per-call options, a bulk item, and the handle of an
 * accepted job. Apart from the client, so that its parts (internal/client/) and client.ts can both
 * import them without importing each other; client.ts re-exports them.
 */
import type { JobDefinition } from "./define-job.js";
import type { Duration } from "./duration.js";
import type { Metadata, TraceContext } from "./envelope.js";
import type { Priority } from "./priority.js";

/** Per-call options of `enqueue`. */
export interface EnqueueOptions {
  /** Start no earlier than this long from now. Exclusive with `runAt`. */
  readonly delay?: Duration;
  /** Start no earlier than this time (Date or ms since the epoch). Exclusive with `delay`. */
  readonly runAt?: Date | number;
  /** Overrides the definition's priority. */
  readonly priority?: Priority;
  /** Overrides the definition's maxAttempts. */
  readonly maxAttempts?: number;
  /** Overrides the definition's timeout. */
  readonly timeout?: Duration;
  /** Small flat metadata that travels with the job and appears in events. */
  readonly metadata?: Metadata;
  /**
   * Caller-chosen job id, the idempotency key: enqueuing the same id again within the broker's
   * dedupe window is a no-op (`duplicate: true`). Rejected on brokers without dedupe, unless the
   * client has a store: the record dedupes the id for as long as it is kept, on every broker.
   */
  readonly id?: string;
  /** Labels to find the job by (`listJobs({ tag })`): up to 20, each 1 to 128 characters. Needs a store. */
  readonly tags?: readonly string[];
  /** W3C trace context to carry to the worker. */
  readonly trace?: TraceContext;
}

/** One item of `enqueueMany`. */
export interface EnqueueItem<I = unknown> {
  /** The job definition. */
  readonly job: JobDefinition<I, unknown>;
  /** Its payload. */
  readonly payload: I;
  /** Per-call options. */
  readonly options?: EnqueueOptions;
}

/** Options of `result()`. */
export interface ResultOptions {
  /** Give up waiting after this long (`WaitTimeoutError`); the job goes on. @default "30s" */
  readonly timeout?: Duration;
}

/** A job the broker accepted. */
export interface EnqueuedJob {
  /** Job id. */
  readonly id: string;
  /** Job name. */
  readonly name: string;
  /** Logical queue. */
  readonly queue: string;
  /** Due time, ms since the epoch. */
  readonly runAt: number;
  /** Priority. */
  readonly priority: Priority;
  /** True when the broker already had this id (idempotent re-enqueue): nothing new was stored. */
  readonly duplicate: boolean;
  /**
   * Waits for the job to finish and resolves with the handler's return value; rejects with
   * `JobFailedError` when it ended dead, cancelled or discarded, `WaitTimeoutError` after
   * `timeout`. Needs a store (`UnsupportedError` without one). `R` types the result (unchecked).
   */
  result<R = unknown>(options?: ResultOptions): Promise<R>;
}
