/**
 * The types a handler is written against, apart from the worker that calls it, so that the worker's
 * parts (internal/worker/) and worker.ts can both import them without importing each other.
 */
import type { JobInfo } from "./events.js";

/** What a handler receives beside its payload. */
export interface JobContext<Ctx> {
  /** Id, name, attempt, … of this job. */
  readonly job: JobInfo;
  /** Aborts when the job times out or the worker shuts down; pass it to fetch, database drivers, … */
  readonly signal: AbortSignal;
  /** The worker's injected context. */
  readonly context: Ctx;
  /**
   * Reports how far the job got (any JSON value, within the worker's `maxResultBytes`); the
   * record keeps the last one (`getJob(id).progress`). Rejects with `LeaseLostError` when this
   * worker no longer holds the job. Needs a store.
   */
  progress(value: unknown): Promise<void>;
  /**
   * The fence of this worker's claim on the job's record: it goes up with every claim, so a system
   * that stores it beside a side effect can refuse a write carrying a lower one (a worker that
   * paused past its claim). 0 without a store.
   */
  readonly fence: number;
}

/** A job handler. Resolving acks the job; throwing retries it (or dead-letters a `NonRetryableError`). */
export type JobHandler<P, Ctx> = (payload: P, ctx: JobContext<Ctx>) => unknown;
