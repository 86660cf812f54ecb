import type { Broker, ConsumeOptions, DeadLetterReason, Delivery, Subscription } from "./broker.js";
import { infoOf } from "./client.js";
import { clock } from "./clock.js";
import type { JobDefinition } from "./define-job.js";
import { type Duration, parseDuration } from "./duration.js";
import { decodeEnvelope, type Envelope, encodeEnvelope, fromLocalEnvelope } from "./envelope.js";
import {
  BrokerClosedError,
  InvalidOptionsError,
  JobsError,
  JobTimeoutError,
  JobValidationError,
  LeaseLostError,
  type SerializedError,
  serializeError,
  UnknownJobError,
} from "./errors.js";
import { Emitter, type JobInfo, type WorkerEventMap } from "./events.js";
import { abortItem, asReceived, boundedRaw, HandlerContext, type Held, jobOf, type Registered } from "./internal/held.js";
import { IntrusiveList } from "./internal/list.js";
import { describeIssues, runSchema, type SchemaResult } from "./internal/schema.js";
import {
  HAND_BACK_DELAY_MS,
  handedBack,
  isSuspect,
  nextLevel,
  pickSuspect,
  SuspectTurn,
  suspectThreshold,
  uncarried,
} from "./internal/suspects.js";
import { assertQueueName } from "./names.js";
import { PRIORITIES, type PriorityLevel } from "./priority.js";
import { physicalQueues } from "./routing.js";

/** Options of `createWorker`. */
export interface WorkerOptions<Ctx> {
  /** The broker to consume from. */
  readonly broker: Broker;
  /** Logical queues to consume. @default the queues of the registered jobs */
  readonly queues?: readonly string[];
  /** Most jobs running at once. @default 10 */
  readonly concurrency?: number;
  /**
   * Most unsettled deliveries the worker holds per physical queue (running plus buffered). Above
   * `concurrency`, the next jobs are already here when a slot frees (fewer broker round trips);
   * buffered deliveries keep their leases by heartbeats. @default concurrency
   */
  readonly prefetch?: number;
  /**
   * A buffered job that has waited this long starts before buffered jobs of higher priority, so a
   * steady stream of urgent jobs delays the others but never starves them. @default "60s"
   */
  readonly priorityAging?: Duration;
  /** Values handlers need that must not travel in payloads (DB pools, API clients). */
  readonly context?: Ctx;
  /** How long a delivery is leased before the broker may redeliver it; heartbeats renew it every third. @default "30s" */
  readonly lease?: Duration;
  /** On close, how long in-flight jobs may finish before their signal aborts. @default "30s" */
  readonly shutdownTimeout?: Duration;
  /** A message delivered more often than this without being settled (its consumer keeps dying) is dead-lettered. @default 10 */
  readonly maxDeliveries?: number;
  /** Largest message accepted on receipt, in bytes; checked before parsing. @default the broker's `maxPayloadBytes` */
  readonly maxPayloadBytes?: number;
}

/** What a handler receives beside its payload. */
export interface JobContext<Ctx> {
  /** Id, name, attempt, … of this job. */
  readonly job: JobInfo;
  /** Aborts when the job times out or the worker shuts down; pass it to fetch, database drivers, … */
  readonly signal: AbortSignal;
  /** The worker's injected context. */
  readonly context: Ctx;
}

/** A job handler. Resolving acks the job; throwing retries it (or dead-letters a `NonRetryableError`). */
export type JobHandler<P, Ctx> = (payload: P, ctx: JobContext<Ctx>) => unknown;

/** Options of `Worker.close`. */
export interface CloseOptions {
  /** Overrides the worker's `shutdownTimeout`. */
  readonly timeout?: Duration;
}

/** Runs handlers for jobs delivered by a broker. */
export interface Worker<Ctx> {
  /** Register the handler of a job (before `start`). Returns the worker for chaining. */
  handle<I, O>(job: JobDefinition<I, O>, handler: JobHandler<O, Ctx>): Worker<Ctx>;
  /** Start consuming. Resolves once every consumer is registered with the broker. */
  start(): Promise<void>;
  /**
   * Graceful shutdown: stop fetching, release jobs not yet started, let running jobs finish up to
   * the timeout, then abort them (they are not acked and will be redelivered). Idempotent: a later
   * call returns the same promise, and a later `timeout` shorter than what is left brings the abort
   * forward (`close({ timeout: 0 })` on a second SIGTERM aborts running jobs at once).
   */
  close(options?: CloseOptions): Promise<void>;
  /** Subscribe to job events. */
  readonly on: Emitter<WorkerEventMap>["on"];
  /** Jobs running now. */
  readonly running: number;
}

const SHUTDOWN_GRACE_MS = 1_000;

/** Creates a worker. Register handlers with `handle`, then `start`. */
export function createWorker<Ctx = undefined>(options: WorkerOptions<Ctx>): Worker<Ctx> {
  if (typeof options !== "object" || options === null || typeof options.broker?.consume !== "function") {
    throw new InvalidOptionsError("broker", "createWorker needs a broker");
  }
  const broker = options.broker;
  const caps = broker.capabilities;
  const concurrency = options.concurrency ?? 10;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10_000) {
    throw new InvalidOptionsError("concurrency", `expected an integer from 1 to 10000, got ${String(concurrency)}`);
  }
  const prefetch = options.prefetch ?? concurrency;
  if (!Number.isInteger(prefetch) || prefetch < 1 || prefetch > 10_000) {
    throw new InvalidOptionsError("prefetch", `expected an integer from 1 to 10000, got ${String(prefetch)}`);
  }
  const agingMs = parseDuration(options.priorityAging ?? "60s", "priorityAging");
  const leaseMs = parseDuration(options.lease ?? "30s", "lease");
  if (leaseMs < 100) throw new InvalidOptionsError("lease", "expected at least 100 ms");
  const shutdownTimeoutMs = parseDuration(options.shutdownTimeout ?? "30s", "shutdownTimeout");
  const maxDeliveries = options.maxDeliveries ?? 10;
  if (!Number.isInteger(maxDeliveries) || maxDeliveries < 1) {
    throw new InvalidOptionsError("maxDeliveries", `expected a positive integer, got ${String(maxDeliveries)}`);
  }
  const suspectFrom = suspectThreshold(maxDeliveries);
  const maxBytes = Math.min(options.maxPayloadBytes ?? caps.maxPayloadBytes, caps.maxPayloadBytes);
  if (options.queues !== undefined) {
    if (!Array.isArray(options.queues)) throw new InvalidOptionsError("queues", "expected an array of queue names");
    for (const [i, q] of options.queues.entries()) assertQueueName(q, `queues[${i}]`);
  }
  const context = options.context as Ctx;
  const events = new Emitter<WorkerEventMap>();
  const handlers = new Map<string, Registered>();
  const buffers: Held[][] = [[], [], [], [], []];
  let buffered = 0;
  /** Jobs holding a delivery: buffered or running (no third set to update on every job). */
  function* heldItems(): Generator<Held> {
    for (const buffer of buffers) yield* buffer;
    yield* runningSet;
    // A suspect waiting for its consumers to pause is in neither.
    if (alone !== undefined && aloneWaiting) yield alone;
  }
  const runningSet = new IntrusiveList<Held>();
  const subscriptions: Subscription[] = [];
  let state: "new" | "starting" | "running" | "closing" | "closed" = "new";
  let heartbeat: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;
  let starting: Promise<void> | undefined;
  let onIdle: (() => void) | undefined;
  /** When close() aborts running jobs (Date.now() ms); a later close() with a shorter timeout moves it earlier. */
  let abortAt = Number.POSITIVE_INFINITY;
  /** While close() waits for running jobs: re-arms its timer for an earlier `abortAt`. */
  let shortenShutdown: (() => void) | undefined;
  let pendingSettles = 0;

  function reportSettleError(error: unknown, envelope: Envelope | undefined): void {
    const job = envelope === undefined ? undefined : infoOf(envelope);
    const serialized = serializeError(error);
    if (JobsError.isInstance(error) && (error.code === "lease-lost" || error.code === "broker-closed")) {
      events.emit("job.lease-lost", job === undefined ? { error: serialized } : { job, error: serialized });
    } else {
      events.emit("error", job === undefined ? { error: serialized } : { error: serialized, job });
    }
  }

  function deadLetter(delivery: Delivery, envelope: Envelope | undefined, reason: DeadLetterReason, error: unknown): Promise<void> {
    const failedAt = Date.now();
    const serialized = serializeError(error);
    const body =
      envelope === undefined
        ? boundedRaw(delivery.body, maxBytes)
        : encodeEnvelope({ ...uncarried(envelope), lastError: { ...serialized, at: failedAt, attempt: envelope.attempt } });
    return delivery.deadLetter({ body, reason, error: serialized, failedAt }).then(
      () => {
        if (events.has("job.dead-lettered")) {
          events.emit(
            "job.dead-lettered",
            envelope === undefined ? { reason, error: serialized } : { job: infoOf(envelope), reason, error: serialized },
          );
        }
      },
      (e: unknown) => reportSettleError(e, envelope),
    );
  }

  function release(delivery: Delivery, envelope: Envelope | undefined): void {
    delivery.defer(0).catch((e: unknown) => reportSettleError(e, envelope));
  }

  function onDelivery(delivery: Delivery): void {
    if (state === "closing" || state === "closed") {
      release(delivery, undefined);
      return;
    }
    let envelope: Envelope;
    try {
      // The pre-split form skips parsing the body, but not the size limit: near it, decode.
      const local = delivery.local;
      envelope =
        local === undefined || delivery.body.length * 3 > maxBytes ? decodeEnvelope(delivery.body, maxBytes) : fromLocalEnvelope(local);
    } catch (error) {
      settling(deadLetter(delivery, undefined, "undecodable", error));
      return;
    }
    const prior = envelope.priorDeliveries;
    const count = prior === undefined ? delivery.deliveryCount : delivery.deliveryCount + prior;
    if (count > maxDeliveries) {
      const error = new JobsError(
        "non-retryable",
        `[jobs] delivered ${count} times without being settled (its worker keeps dying or losing the lease)`,
      );
      settling(deadLetter(delivery, envelope, "crash-loop", error));
      return;
    }
    const now = Date.now();
    if (envelope.runAt > now) {
      const delayMs = Math.min(envelope.runAt - now, caps.maxDelayMs);
      delivery.defer(delayMs).then(
        () => {
          if (events.has("job.deferred")) events.emit("job.deferred", { job: infoOf(envelope), delayMs });
        },
        (e: unknown) => reportSettleError(e, envelope),
      );
      return;
    }
    const reg = handlers.get(envelope.name);
    if (reg === undefined) {
      settling(deadLetter(delivery, envelope, "unknown-job", new UnknownJobError(envelope.name)));
      return;
    }
    const level = PRIORITIES.indexOf(envelope.priority) as PriorityLevel;
    const item: Held = {
      delivery,
      envelope,
      reg,
      level,
      count,
      leaseAt: now,
      leaseConfirmedAt: now,
      leaseLost: false,
      controller: undefined,
      shutdownAborted: false,
      done: false,
      job: undefined,
      startedAt: 0,
      bufferedAt: now,
      deadline: Number.POSITIVE_INFINITY,
      prev: undefined,
      next: undefined,
    };
    if (count >= suspectFrom) {
      // One suspect at a time (internal/suspects.ts): while one waits to start, others go back,
      // uncounted. Once it runs, a hand-back cut short by its crash would leave the job twice in the
      // queue: later suspects wait in the buffer for it instead (consumers that pause send none).
      if (aloneWaiting) {
        handBack(item, HAND_BACK_DELAY_MS);
        return;
      }
      suspects++;
    }
    (buffers[level] as Held[]).push(item);
    buffered++;
    pump();
  }

  /** Hands a suspect back to the broker unrun, its count carried in the envelope (neither raised nor reset). */
  function handBack(item: Held, delayMs: number): void {
    const { delivery, envelope } = item;
    settling(
      delivery
        .retry({
          id: envelope.id,
          body: encodeEnvelope(handedBack(item, asReceived(delivery, envelope))),
          priority: item.level,
          delayMs: Math.min(delayMs, caps.maxDelayMs),
          dedupe: false,
        })
        .catch((e: unknown) => reportSettleError(e, envelope)),
    );
  }

  /**
   * The suspect to start now (removed from the buffer), or undefined after handing back every other
   * suspect buffered: it starts once those hand-backs have reached the broker, so a crash while it
   * runs finds no other suspect held here. The highest priority level first, then `pickSuspect`.
   */
  function takeSuspect(): Held | undefined {
    let chosen: Held | undefined;
    let from: Held[] | undefined;
    for (let level = 4; level >= 0 && chosen === undefined; level--) {
      const buffer = buffers[level] as Held[];
      const i = pickSuspect(buffer, suspectFrom);
      if (i >= 0) {
        chosen = buffer[i];
        from = buffer;
      }
    }
    if (chosen === undefined || from === undefined) {
      suspects = 0;
      return undefined;
    }
    if (suspects > 1) {
      for (const buffer of buffers) {
        for (let i = buffer.length - 1; i >= 0; i--) {
          const item = buffer[i] as Held;
          if (item === chosen || !isSuspect(item, suspectFrom)) continue;
          buffer.splice(i, 1);
          buffered--;
          suspects--;
          handBack(item, HAND_BACK_DELAY_MS);
        }
      }
      return undefined;
    }
    from.splice(from.indexOf(chosen), 1);
    buffered--;
    suspects--;
    return chosen;
  }

  // One timer for all running jobs, armed for the earliest deadline, instead of a setTimeout and
  // clearTimeout per job: most jobs end long before their timeout, so it rarely fires.
  let timeoutTimer: NodeJS.Timeout | undefined;
  let timeoutAt = Number.POSITIVE_INFINITY;
  function armTimeouts(at: number): void {
    if (timeoutTimer !== undefined) clearTimeout(timeoutTimer);
    timeoutAt = at;
    timeoutTimer = setTimeout(checkTimeouts, Math.max(0, at - clock.now()));
  }
  function checkTimeouts(): void {
    timeoutTimer = undefined;
    timeoutAt = Number.POSITIVE_INFINITY;
    const now = clock.now();
    let next = Number.POSITIVE_INFINITY;
    for (const item of runningSet) {
      if (item.done) continue;
      if (item.deadline <= now) {
        const error = new JobTimeoutError(item.envelope.timeout);
        abortItem(item, error);
        completed(item, true, error);
      } else if (item.deadline < next) next = item.deadline;
    }
    if (next !== Number.POSITIVE_INFINITY) armTimeouts(next);
  }

  let pumping = false;
  let alone: Held | undefined; // the crash suspect running alone, or waiting to (aloneWaiting)
  let aloneWaiting = false;
  let suspects = 0; // crash suspects buffered
  let paused = false; // consumers paused for the suspect
  let pausing = 0; // pauses not yet resolved
  const suspectTurn = new SuspectTurn(() => pump());
  function pump(): void {
    // Re-entrant calls (a synchronous handler completing inside the loop) only flag more work,
    // so a long buffer of synchronous jobs never deepens the stack.
    if (pumping) return;
    pumping = true;
    try {
      const agedBefore = Date.now() - agingMs;
      // A crash suspect runs alone (internal/suspects.ts): while one is buffered, nothing else starts;
      // it starts once nothing runs or settles and no other suspect is held, and nothing beside it.
      while (runningSet.size < concurrency && buffered > 0 && state === "running" && alone === undefined) {
        if (suspects > 0) {
          if (runningSet.size > 0 || pendingSettles > 0 || !suspectTurn.ready()) return;
          const suspect = takeSuspect();
          if (suspect === undefined) return;
          holdFor(suspect);
          continue;
        }
        const item = buffers[nextLevel(buffers, agedBefore)]?.shift();
        if (item === undefined) return;
        buffered--;
        if (item.leaseLost || Date.now() - item.leaseConfirmedAt >= leaseMs) {
          expired(item);
          continue;
        }
        runningSet.add(item);
        execute(item);
      }
    } finally {
      pumping = false;
    }
  }

  /**
   * Reserves the worker for a suspect: nothing else starts, suspects delivered meanwhile go back,
   * and the consumers that can pause stop asking for deliveries. The suspect starts once they have
   * (no request left that could take messages this process has not seen) and nothing settles.
   */
  function holdFor(suspect: Held): void {
    alone = suspect;
    aloneWaiting = true;
    const pauses: Promise<void>[] = [];
    for (const s of subscriptions) {
      if (s.pause !== undefined) pauses.push(s.pause().catch(() => {}));
    }
    if (pauses.length === 0) {
      startAlone();
      return;
    }
    paused = true;
    pausing++;
    void Promise.all(pauses).then(() => {
      pausing--;
      startAlone();
    });
  }

  function startAlone(): void {
    const item = alone;
    if (item === undefined || !aloneWaiting || pausing > 0 || pendingSettles > 0 || state !== "running") return;
    aloneWaiting = false;
    if (item.leaseLost || Date.now() - item.leaseConfirmedAt >= leaseMs) {
      alone = undefined;
      resumeConsumers();
      expired(item);
      return;
    }
    runningSet.add(item);
    execute(item);
  }

  function resumeConsumers(): void {
    if (!paused) return;
    paused = false;
    for (const s of subscriptions) s.resume?.();
  }

  /**
   * A buffered delivery whose lease ran out before a slot freed (an event-loop stall, heartbeats
   * the broker never confirmed during a partition): the broker may already have handed the message
   * to someone else, or back to this worker, so it must not start here. It is handed back with
   * `defer(0)`, which a broker refuses once the lease is gone (nothing is acked, no attempt counted)
   * and which frees its prefetch slot; should the broker still hold the lease, the message just goes
   * back to its queue.
   */
  function expired(item: Held): void {
    const { delivery, envelope } = item;
    if (!item.leaseLost) {
      item.leaseLost = true;
      const error = new LeaseLostError("[jobs] the lease of a buffered job ran out before it could start; it was not run");
      events.emit("job.lease-lost", { job: jobOf(item), error: serializeError(error) });
    }
    settling(
      delivery.defer(0).catch((e: unknown) => {
        if (!(JobsError.isInstance(e) && (e.code === "lease-lost" || e.code === "broker-closed"))) reportSettleError(e, envelope);
      }),
    );
  }

  /** Tracks a settle operation so close() waits for it. */
  function settling(operation: Promise<void>): void {
    pendingSettles++;
    const done = (): void => {
      pendingSettles--;
      checkIdle();
    };
    operation.then(done, done);
  }

  function checkIdle(): void {
    if (runningSet.size > 0 || pendingSettles > 0) return;
    onIdle?.();
    if (aloneWaiting) startAlone();
    else if (buffered > 0) pump();
  }

  function execute(item: Held): void {
    const { envelope, reg } = item;
    if (reg.job.schema === undefined) {
      invoke(item, envelope.payload);
      return;
    }
    const result = runSchema(reg.job.schema, envelope.payload);
    if (result instanceof Promise)
      result.then(
        (r) => validated(item, r),
        (e: unknown) => completed(item, true, e),
      );
    else validated(item, result);
  }

  function validated(item: Held, result: SchemaResult): void {
    if (result.ok) {
      invoke(item, result.value);
      return;
    }
    const { envelope } = item;
    const error = new JobValidationError(
      `[jobs] received payload of "${envelope.name}" is invalid: ${describeIssues(result.issues)}`,
      result.issues,
    );
    item.done = true;
    settling(deadLetter(item.delivery, envelope, "validation", error));
    finished(item);
  }

  function invoke(item: Held, payload: unknown): void {
    const { envelope } = item;
    item.startedAt = clock.now();
    if (events.has("job.started")) events.emit("job.started", { job: jobOf(item), waitMs: Math.max(0, Date.now() - envelope.runAt) });
    let result: unknown;
    try {
      result = item.reg.handler(payload, new HandlerContext(context, item));
    } catch (error) {
      completed(item, true, error);
      return;
    }
    if (result === null || typeof (result as { then?: unknown } | undefined)?.then !== "function") {
      completed(item, false, undefined);
      return;
    }
    item.deadline = item.startedAt + envelope.timeout;
    if (item.deadline < timeoutAt) armTimeouts(item.deadline);
    (result as PromiseLike<unknown>).then(
      () => completed(item, false, undefined),
      (error: unknown) => completed(item, true, error),
    );
  }

  /** The handler is over (or timed out): free the slot and settle the delivery. */
  function completed(item: Held, failed: boolean, failure: unknown): void {
    if (item.done) return;
    item.done = true;
    if (failed) {
      settling(settle(item, true, failure));
    } else {
      // The hot path: one promise reaction per job, no intermediate promises.
      const durationMs = clock.now() - item.startedAt;
      pendingSettles++;
      item.delivery.ack().then(
        () => {
          pendingSettles--;
          if (events.has("job.succeeded")) events.emit("job.succeeded", { job: jobOf(item), durationMs });
          checkIdle();
        },
        (e: unknown) => {
          pendingSettles--;
          reportSettleError(e, item.envelope);
          checkIdle();
        },
      );
    }
    finished(item);
  }

  function finished(item: Held): void {
    runningSet.delete(item);
    if (alone === item) {
      alone = undefined;
      resumeConsumers();
    }
    checkIdle();
    pump();
  }

  function settle(item: Held, failed: boolean, failure: unknown): Promise<void> {
    const { delivery, envelope } = item;
    const job = jobOf(item);
    const durationMs = clock.now() - item.startedAt;
    if (!failed) {
      return delivery.ack().then(
        () => {
          if (events.has("job.succeeded")) events.emit("job.succeeded", { job, durationMs });
        },
        (e: unknown) => reportSettleError(e, envelope),
      );
    }
    if (item.shutdownAborted) {
      // Aborted by shutdown, not by its own fault: hand it back without counting an attempt.
      return delivery.defer(0).catch((e: unknown) => reportSettleError(e, envelope));
    }
    const error: SerializedError = serializeError(failure);
    // Only NonRetryableError skips the remaining attempts: other library errors a handler lets
    // escape (a closed producer during shutdown, say) are as transient as any other failure.
    const nonRetryable = JobsError.isInstance(failure) && failure.code === "non-retryable";
    const willRetry = !nonRetryable && envelope.attempt < envelope.maxAttempts;
    if (events.has("job.failed")) events.emit("job.failed", { job, durationMs, error, willRetry });
    if (!willRetry) {
      return deadLetter(delivery, asReceived(delivery, envelope), nonRetryable ? "non-retryable" : "max-attempts", failure);
    }
    const now = Date.now();
    const delay = Math.max(0, Math.ceil(item.reg.job.backoff(envelope.attempt, failure)));
    const next: Envelope = {
      ...uncarried(asReceived(delivery, envelope)),
      attempt: envelope.attempt + 1,
      runAt: now + delay,
      lastError: { ...error, at: now, attempt: envelope.attempt },
    };
    // Emitted before the broker call: once the broker has the next attempt it may deliver it
    // (even to this worker) before this promise's reactions run, and events must stay in order.
    // Should the retry fail, `job.lease-lost` or `error` follows and the broker redelivers.
    if (events.has("job.retrying")) events.emit("job.retrying", { job, delayMs: delay, error });
    return delivery
      .retry({
        id: envelope.id,
        body: encodeEnvelope(next),
        priority: item.level,
        delayMs: Math.min(delay, caps.maxDelayMs),
        dedupe: false,
      })
      .catch((e: unknown) => reportSettleError(e, envelope));
  }

  function tick(): void {
    if (!caps.leaseExtension) return;
    const now = Date.now();
    for (const item of heldItems()) {
      if (item.leaseLost || now - item.leaseAt < leaseMs / 3) continue;
      item.leaseAt = now;
      item.delivery.extendLease(leaseMs).then(
        () => {
          if (now > item.leaseConfirmedAt) item.leaseConfirmedAt = now;
        },
        (error: unknown) => {
          item.leaseLost = true;
          reportSettleError(error, item.envelope);
        },
      );
    }
  }

  function consumeOptions(queue: string): ConsumeOptions {
    let jobTimeoutMs: number | undefined;
    for (const r of handlers.values()) {
      if (r.job.queue === queue && (jobTimeoutMs === undefined || r.job.timeoutMs > jobTimeoutMs)) jobTimeoutMs = r.job.timeoutMs;
    }
    return jobTimeoutMs === undefined ? { prefetch, leaseMs } : { prefetch, leaseMs, jobTimeoutMs };
  }

  async function startConsumers(): Promise<void> {
    const queues = options.queues ?? [...new Set([...handlers.values()].map((r) => r.job.queue))];
    if (queues.length === 0) throw new InvalidOptionsError("queues", "no queues to consume: register a handler or pass queues");
    state = "starting";
    heartbeat = setInterval(tick, Math.max(50, leaseMs / 6));
    try {
      for (const queue of queues) {
        for (const physical of physicalQueues(queue, caps)) {
          subscriptions.push(await broker.consume(physical.name, consumeOptions(queue), onDelivery));
        }
      }
    } catch (error) {
      state = "running";
      await worker.close({ timeout: 0 });
      throw error;
    }
    state = "running";
    pump();
  }

  const worker: Worker<Ctx> = {
    on: events.on,
    get running() {
      return runningSet.size;
    },
    handle(job, handler) {
      if (state !== "new") throw new InvalidOptionsError("handle", "register handlers before start()");
      if (typeof job !== "object" || job === null || typeof job.backoff !== "function") {
        throw new InvalidOptionsError("job", "expected a job definition from defineJob()");
      }
      if (typeof handler !== "function") throw new InvalidOptionsError("handler", `handler of "${job.name}" must be a function`);
      if (handlers.has(job.name)) throw new InvalidOptionsError("job", `a handler for "${job.name}" is already registered`);
      handlers.set(job.name, { job: job as JobDefinition<unknown, unknown>, handler: handler as JobHandler<unknown, unknown> });
      return worker;
    },
    start() {
      if (state === "closing" || state === "closed") return Promise.reject(new BrokerClosedError("[jobs] worker is closed"));
      // A second call while the first is still registering consumers waits for the same start.
      if (starting === undefined) {
        const attempt = startConsumers();
        starting = attempt;
        // Nothing was started (no queues): let a later start() try again after handle().
        attempt.catch(() => {
          if (state === "new") starting = undefined;
        });
      }
      return starting;
    },
    close(closeOptions) {
      if (closing !== undefined) {
        // A later call with a shorter timeout (a second SIGTERM, say) brings the abort forward.
        if (closeOptions?.timeout !== undefined) {
          abortAt = Math.min(abortAt, Date.now() + parseDuration(closeOptions.timeout, "timeout"));
          shortenShutdown?.();
        }
        return closing;
      }
      const timeoutMs = closeOptions?.timeout === undefined ? shutdownTimeoutMs : parseDuration(closeOptions.timeout, "timeout");
      state = "closing";
      abortAt = Date.now() + timeoutMs;
      closing = (async () => {
        await Promise.allSettled(subscriptions.map((s) => s.stop()));
        for (const buffer of buffers) {
          for (const item of buffer.splice(0)) {
            // A suspect keeps its count (a release would reset it): shutdowns must not wash a crash loop away.
            if (isSuspect(item, suspectFrom)) handBack(item, 0);
            else release(item.delivery, item.envelope);
          }
        }
        buffered = 0;
        suspects = 0;
        if (alone !== undefined && aloneWaiting) {
          handBack(alone, 0);
          alone = undefined;
          aloneWaiting = false;
        }
        if (!(await idleWithin(Math.max(0, abortAt - Date.now()), true))) {
          const reason = new BrokerClosedError("[jobs] worker is shutting down");
          for (const item of runningSet) {
            item.shutdownAborted = true;
            abortItem(item, reason);
          }
          await idleWithin(Math.min(SHUTDOWN_GRACE_MS, Math.max(timeoutMs, 100)));
        }
        if (heartbeat !== undefined) clearInterval(heartbeat);
        if (timeoutTimer !== undefined) clearTimeout(timeoutTimer);
        state = "closed";
      })();
      return closing;
    },
  };

  /** Resolves true once nothing runs or settles, false after `ms`; `shortenable`: ends at `abortAt` if a later close() moves it earlier. */
  function idleWithin(ms: number, shortenable = false): Promise<boolean> {
    if (runningSet.size === 0 && pendingSettles === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const expire = (): void => {
        onIdle = undefined;
        shortenShutdown = undefined;
        resolve(false);
      };
      let timer = setTimeout(expire, ms);
      if (shortenable) {
        shortenShutdown = () => {
          clearTimeout(timer);
          timer = setTimeout(expire, Math.max(0, abortAt - Date.now()));
        };
      }
      onIdle = () => {
        clearTimeout(timer);
        onIdle = undefined;
        shortenShutdown = undefined;
        resolve(true);
      };
    });
  }

  return worker;
}
