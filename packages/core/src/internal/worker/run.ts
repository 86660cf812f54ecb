/**
 * Running a held job: validate its payload (when the job has a schema), call the handler, and
 * settle by its outcome once (success, failure, timeout: whichever comes first).
 *
 * A timeout settles the job at once, but cannot stop its handler: the job stays in the running
 * list (`overdue`), holding its concurrency slot, until the handler returns or throws, and the
 * worker starts no other attempt of it meanwhile (unless `overlapRetries`). A handler that
 * returns past its deadline (synchronous work, which no timer can interrupt, or a blocked event
 * loop) has timed out too: its result is discarded.
 */
import { setImmediate } from "node:timers";
import { clock } from "../../clock.js";
import { JobTimeoutError, JobValidationError, NonRetryableError, PayloadTooLargeError } from "../../errors.js";
import type { Emitter, WorkerEventMap } from "../../events.js";
import { assertJsonValue, utf8Length } from "../json.js";
import { describeIssues, runSchema, type SchemaResult } from "../schema.js";
import type { Tracing } from "../tracing.js";
import { endAttempt } from "../tracing.js";
import type { Deadlines } from "./deadlines.js";
import { abortHandler, HandlerContext, type HeldDelivery, jobOf, type ProgressWriter } from "./held-delivery.js";
import { failureOutcome, type Settlement } from "./settlement.js";

/** What running a job needs from the worker. */
export interface RunHost<Ctx> {
  /** The worker's injected context. */
  readonly context: Ctx;
  readonly events: Emitter<WorkerEventMap>;
  readonly deadlines: Pick<Deadlines, "watch">;
  readonly settlement: Pick<Settlement, "ack" | "fail" | "deadLetterHeld">;
  /** `ctx.progress`. */
  readonly progress: ProgressWriter;
  /** Largest result kept, in bytes of JSON (store only). */
  readonly maxResultBytes: number;
  /** The worker's tracing, if on: a `process` span per attempt. */
  readonly tracing: Tracing | undefined;
  /** The job is over and its settlement sent: free its slot. */
  finished(item: HeldDelivery): void;
  /** The job timed out and its settlement is sent, but its handler still runs: it keeps its slot until `finished`. */
  released(item: HeldDelivery): void;
}

export class JobRunner<Ctx> {
  readonly #host: RunHost<Ctx>;
  /** Overdue handlers (timed out, still running) per job id. */
  readonly #overdue = new Map<string, number>();
  #overdueCount = 0;

  constructor(host: RunHost<Ctx>) {
    this.#host = host;
  }

  /** Runs a job already in the running list. */
  run(item: HeldDelivery): void {
    const { envelope, registered } = item;
    if (this.#host.tracing !== undefined) item.span = this.#host.tracing.process(envelope);
    if (registered.job.schema === undefined) {
      this.#invoke(item, envelope.payload);
      return;
    }
    const result = runSchema(registered.job.schema, envelope.payload);
    if (result instanceof Promise)
      result.then(
        (r) => this.#validated(item, r),
        (e: unknown) => this.failed(item, e),
      );
    else this.#validated(item, result);
  }

  /** How many timed-out handlers still run. */
  get overdue(): number {
    return this.#overdueCount;
  }

  /** True while a timed-out handler of job `id` still runs on this worker. */
  isOverdue(id: string): boolean {
    return this.#overdue.has(id);
  }

  /**
   * The job's deadline passed while its handler runs (its signal is aborted): the attempt fails
   * now (retry or dead letter), and the job keeps its slot until the handler ends.
   */
  timedOut(item: HeldDelivery, error: JobTimeoutError): void {
    if (item.completed) return;
    item.completed = true;
    item.overdue = true;
    item.pendingTimeout = error;
    const id = item.envelope.id;
    this.#overdue.set(id, (this.#overdue.get(id) ?? 0) + 1);
    this.#overdueCount++;
    // A handler that honours its signal ends within the microtasks its abort set off: it is not
    // overdue, and its next attempt, which the broker may hand back at once, must not wait for it.
    setImmediate(() => {
      if (!item.overdue) return;
      this.#settleTimeout(item);
      this.#host.released(item);
    });
  }

  /** Settles a timed-out attempt as failed, once. */
  #settleTimeout(item: HeldDelivery): void {
    const error = item.pendingTimeout;
    if (error === undefined) return;
    item.pendingTimeout = undefined;
    // The attempt's span ends with its settlement (the handler may still run: its later spans are orphans).
    if (item.span !== undefined) endAttempt(item.span, failureOutcome(item, error), error);
    this.#host.settlement.fail(item, error);
  }

  /** The handler succeeded (ignored once the job is over); with a store, its return value is the result. */
  succeeded(item: HeldDelivery, value?: unknown): void {
    if (item.completed) {
      this.#ended(item);
      return;
    }
    const ranMs = clock.now() - item.startedAt;
    const timeoutMs = item.envelope.timeout;
    if (ranMs > timeoutMs) {
      // No timer fired in time: the handler held the event loop (synchronous work) past its deadline.
      const error = new JobTimeoutError(
        timeoutMs,
        `[jobs] job timed out after ${timeoutMs} ms: its handler returned only after ${Math.round(ranMs)} ms, ` +
          "holding the event loop (synchronous work cannot be interrupted in-process), and its result was discarded",
      );
      abortHandler(item, error);
      this.failed(item, error);
      return;
    }
    if (item.fence !== 0 && value !== undefined) {
      const error = this.#resultError(item, value);
      if (error !== undefined) {
        this.failed(item, error);
        return;
      }
    }
    item.completed = true;
    if (item.span !== undefined) endAttempt(item.span, "succeeded");
    this.#host.settlement.ack(item);
    this.#host.finished(item);
  }

  /** The handler failed (ignored once the job is over). */
  failed(item: HeldDelivery, failure: unknown): void {
    if (item.completed) {
      this.#ended(item);
      return;
    }
    item.completed = true;
    if (item.span !== undefined) endAttempt(item.span, failureOutcome(item, failure), failure);
    this.#host.settlement.fail(item, failure);
    this.#host.finished(item);
  }

  /** A handler returned or threw after the job was over: if it had timed out, its slot is free at last. */
  #ended(item: HeldDelivery): void {
    if (!item.overdue) return;
    item.overdue = false;
    item.deadline = Number.POSITIVE_INFINITY;
    const id = item.envelope.id;
    const left = (this.#overdue.get(id) ?? 1) - 1;
    if (left === 0) this.#overdue.delete(id);
    else this.#overdue.set(id, left);
    this.#overdueCount--;
    this.#settleTimeout(item);
    this.#host.finished(item);
  }

  #validated(item: HeldDelivery, result: SchemaResult): void {
    if (result.ok) {
      this.#invoke(item, result.value);
      return;
    }
    const { envelope } = item;
    const error = new JobValidationError(
      `[jobs] received payload of "${envelope.name}" is invalid: ${describeIssues(result.issues)}`,
      result.issues,
    );
    item.completed = true;
    if (item.span !== undefined) endAttempt(item.span, "dead-lettered", error);
    this.#host.settlement.deadLetterHeld(item, "validation", error);
    this.#host.finished(item);
  }

  #invoke(item: HeldDelivery, payload: unknown): void {
    const host = this.#host;
    const { envelope } = item;
    item.startedAt = clock.now();
    if (host.events.has("job.started"))
      host.events.emit("job.started", { job: jobOf(item), waitMs: Math.max(0, Date.now() - envelope.runAt) });
    let result: unknown;
    try {
      const ctx = new HandlerContext(host.context, item, host.progress);
      const { span, registered } = item;
      result =
        span === undefined || host.tracing === undefined
          ? registered.handler(payload, ctx)
          : host.tracing.run(span, () => registered.handler(payload, ctx));
    } catch (error) {
      this.failed(item, error);
      return;
    }
    if (result === null || typeof (result as { then?: unknown } | undefined)?.then !== "function") {
      this.succeeded(item, result);
      return;
    }
    host.deadlines.watch(item, envelope.timeout);
    (result as PromiseLike<unknown>).then(
      (value) => this.succeeded(item, value),
      (error: unknown) => this.failed(item, error),
    );
  }

  /** Sets `item.resultJson`, or returns why the value cannot be the result (not JSON, over the limit): the job then fails for good. */
  #resultError(item: HeldDelivery, value: unknown): Error | undefined {
    try {
      assertJsonValue(value, `the result of "${item.envelope.name}"`);
    } catch (error) {
      return new NonRetryableError((error as Error).message, { cause: error });
    }
    const json = JSON.stringify(value);
    const limit = this.#host.maxResultBytes;
    if (json.length * 3 > limit) {
      const size = utf8Length(json);
      if (size > limit) {
        return new NonRetryableError(
          `[jobs] the result of "${item.envelope.name}" is ${size} bytes of JSON, over the worker's maxResultBytes (${limit}); store large results elsewhere and return a reference`,
          { cause: new PayloadTooLargeError(size, limit, "result") },
        );
      }
    }
    item.resultJson = json;
    return undefined;
  }
}
