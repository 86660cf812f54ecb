/**
 * The worker: public types and `createWorker`, which wires its parts (internal/worker/): receipt,
 * the priority buffer, the suspect gate, running handlers, deadlines, heartbeats, settlement and
 * shutdown. What each part needs from the others goes through its host interface.
 */

import { hostname } from "node:os";
import type { Broker, ConsumeOptions, DeadLetterReason, Delivery, Subscription } from "./broker.js";
import type { JobDefinition } from "./define-job.js";
import { type Duration, parseDuration } from "./duration.js";
import type { Envelope } from "./envelope.js";
import {
  BrokerClosedError,
  InvalidOptionsError,
  JobCancelledError,
  JobsError,
  LeaseLostError,
  PayloadTooLargeError,
  serializeError,
} from "./errors.js";
import { Emitter, type WorkerEventMap } from "./events.js";
import { forwardBrokerEntries, workerReporting } from "./internal/entries.js";
import { assertJsonValue, utf8Length } from "./internal/json.js";
import { IntrusiveList } from "./internal/list.js";
import { Deadlines } from "./internal/worker/deadlines.js";
import { abortHandler, type HeldDelivery, jobOf, type Registered } from "./internal/worker/held-delivery.js";
import { Heartbeat, leaseExpired } from "./internal/worker/leases.js";
import { PriorityBuffer } from "./internal/worker/priority-buffer.js";
import { Pruner } from "./internal/worker/pruner.js";
import { type ReceiveHost, receive } from "./internal/worker/receive.js";
import { JobRunner } from "./internal/worker/run.js";
import { Settlement } from "./internal/worker/settlement.js";
import { Shutdown } from "./internal/worker/shutdown.js";
import { SuspectGate } from "./internal/worker/suspect-gate.js";
import { isSuspect, suspectThreshold } from "./internal/worker/suspects.js";
import { Sweeper } from "./internal/worker/sweeper.js";
import type { JobHandler } from "./job-context.js";
import type { LoggerOption } from "./logger.js";
import { assertQueueName } from "./names.js";
import { needsStore, newRecord, StoreLink, storeOption } from "./records.js";
import { parseRetain, type RetainPolicy } from "./retention.js";
import { physicalQueues } from "./routing.js";
import type { ClaimOutcome, JobStore } from "./store.js";

export type { JobContext, JobHandler } from "./job-context.js";

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
  /**
   * Where the worker's `error` and `job.lease-lost` events, and its broker's warnings and errors,
   * are logged (pino, console, …: `Logger`). `false` logs nothing.
   * @default `console`, once per code, for what no listener hears
   */
  readonly logger?: LoggerOption;
  /**
   * The job store the clients enqueue with (docs/concepts/records.md). With it, every job is
   * claimed in its record before it runs and finished there before the ack: a job whose record is
   * finished never starts again, results and progress are kept, and `client.cancel` reaches
   * running jobs. @default none
   */
  readonly store?: JobStore;
  /**
   * With a store: a record whose current generation is still unpublished this long after its last
   * write (its producer died between record and publish, or its enqueue ended outcome-unknown) is
   * published by the sweeper, which runs every half of it in one worker at a time. @default "10s"
   */
  readonly sweepAfter?: Duration;
  /**
   * With a store: how long finished records are kept, per status, for the jobs this worker handles
   * (a definition's own `retain` wins status by status). One worker at a time prunes.
   * @default a day for `succeeded`, `cancelled` and `discarded`, a week for `dead`
   */
  readonly retain?: RetainPolicy;
  /** With a store: how often the pruner applies retention. @default "1m" */
  readonly pruneEvery?: Duration;
  /** Largest handler result (and `ctx.progress` value) kept in the store, in bytes of JSON; a larger result fails the job for good. @default 65536 */
  readonly maxResultBytes?: number;
}

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

/** How long a delivery waits before it is offered again when the store could not be reached to claim it. */
const STORE_RETRY_MS = 1_000;

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
  const maxBytes = Math.min(options.maxPayloadBytes ?? caps.maxPayloadBytes, caps.maxPayloadBytes);
  if (options.queues !== undefined) {
    if (!Array.isArray(options.queues)) throw new InvalidOptionsError("queues", "expected an array of queue names");
    for (const [i, q] of options.queues.entries()) assertQueueName(q, `queues[${i}]`);
  }

  const store = storeOption(options.store, broker.name);
  const link = store === undefined ? undefined : new StoreLink(store);
  const maxResultBytes = options.maxResultBytes ?? 65_536;
  if (!Number.isInteger(maxResultBytes) || maxResultBytes < 2) {
    throw new InvalidOptionsError("maxResultBytes", `expected an integer of at least 2, got ${String(maxResultBytes)}`);
  }
  const workerId = `${hostname()}:${process.pid}:${crypto.randomUUID().slice(0, 8)}`;

  const threshold = suspectThreshold(maxDeliveries);
  const events = new Emitter<WorkerEventMap>(workerReporting(options.logger));
  const unforward = forwardBrokerEntries(broker, options.logger);
  const handlers = new Map<string, Registered>();
  const subscriptions: Subscription[] = [];
  let state: "new" | "starting" | "running" | "closing" | "closed" = "new";
  let starting: Promise<void> | undefined;
  let pumping = false;

  const running = new IntrusiveList<HeldDelivery>();
  const buffer = new PriorityBuffer(agingMs);
  const settlement = new Settlement({ events, maxDelayMs: caps.maxDelayMs, maxBytes, settled: checkIdle, link });
  const deadlines = new Deadlines({ running: () => running, timedOut: (item, error) => runner.failed(item, error) });
  const runner = new JobRunner<Ctx>({
    context: options.context as Ctx,
    events,
    deadlines,
    settlement,
    finished,
    progress,
    maxResultBytes,
  });
  const sweepAfterMs = parseDuration(options.sweepAfter ?? "10s", "sweepAfter");
  if (sweepAfterMs < 100) throw new InvalidOptionsError("sweepAfter", "expected at least 100 ms");
  const retain = parseRetain(options.retain, "retain");
  const pruneEveryMs = parseDuration(options.pruneEvery ?? "1m", "pruneEvery");
  if (pruneEveryMs < 100) throw new InvalidOptionsError("pruneEvery", "expected at least 100 ms");
  const pruner = link === undefined ? undefined : new Pruner({ link, owner: workerId, events, handlers, retain, intervalMs: pruneEveryMs });
  const sweeper =
    link === undefined
      ? undefined
      : new Sweeper({ link, broker, owner: workerId, events, graceMs: sweepAfterMs, intervalMs: Math.ceil(sweepAfterMs / 2) });
  const gate = new SuspectGate({
    buffer,
    threshold,
    subscriptions: () => subscriptions,
    canStart: () => settlement.pending === 0 && state === "running",
    leaseExpired: (item) => leaseExpired(item, Date.now(), leaseMs),
    releaseExpired: (item) => settlement.releaseExpired(item),
    releaseKeepingCount: (item, delayMs) => settlement.releaseKeepingCount(item, delayMs),
    run: start,
    pump,
  });
  const receipt: ReceiveHost = { maxBytes, maxDeliveries, handlers, settlement, deadLetterJob };
  const heartbeat = new Heartbeat({
    leaseMs,
    canExtend: caps.leaseExtension,
    held,
    lost: (item, e) => settlement.report(e, item.envelope),
    renewClaims: link === undefined ? undefined : renewClaims,
    checkClaims: link === undefined ? undefined : checkClaims,
  });
  const shutdown = new Shutdown({
    timeoutMs: shutdownTimeoutMs,
    closing: () => {
      state = "closing";
    },
    stopConsumers: () => Promise.allSettled(subscriptions.map((s) => s.stop())),
    releaseUnstarted,
    running: () => running,
    isIdle: () => running.size === 0 && settlement.pending === 0,
    closed: () => {
      unforward();
      sweeper?.stop();
      pruner?.stop();
      heartbeat.stop();
      deadlines.stop();
      state = "closed";
    },
  });

  /** Jobs holding a delivery: buffered, running, or the suspect waiting to start (no third set to update on every job). */
  function* held(): Generator<HeldDelivery> {
    yield* buffer;
    yield* running;
    const waiting = gate.waiting;
    if (waiting !== undefined) yield waiting;
  }

  function onDelivery(delivery: Delivery): void {
    if (state === "closing" || state === "closed") {
      settlement.release(delivery, undefined);
      return;
    }
    const item = receive(delivery, receipt);
    if (item === undefined || !gate.admit(item)) return;
    buffer.push(item);
    pump();
  }

  function pump(): void {
    // Re-entrant calls (a synchronous handler completing inside the loop) only flag more work,
    // so a long buffer of synchronous jobs never deepens the stack.
    if (pumping) return;
    pumping = true;
    try {
      const agedBefore = buffer.agedBefore(Date.now());
      // A crash suspect runs alone (internal/worker/suspect-gate.ts): while one is buffered, nothing
      // else starts; it starts once nothing runs or settles and no other suspect is held, and nothing beside it.
      while (running.size < concurrency && buffer.size > 0 && state === "running" && !gate.reserved) {
        if (gate.buffered > 0) {
          if (running.size > 0 || settlement.pending > 0 || !gate.reserveNext()) return;
          continue;
        }
        const item = buffer.shift(agedBefore);
        if (item === undefined) return;
        if (leaseExpired(item, Date.now(), leaseMs)) {
          settlement.releaseExpired(item);
          continue;
        }
        start(item);
      }
    } finally {
      pumping = false;
    }
  }

  function start(item: HeldDelivery): void {
    running.add(item);
    if (link === undefined) runner.run(item);
    else claimAndRun(item, link);
  }

  /**
   * Claim before run (docs/concepts/records.md, rule 2): the delivery runs only if its record is
   * runnable with the same generation. A message with no generation (enqueued without a store, or
   * by another producer) gets its record now. Whatever does not run frees its slot.
   */
  function claimAndRun(item: HeldDelivery, l: StoreLink): void {
    const { envelope, delivery } = item;
    // Claimed by the broker as it handed the delivery out (fused): decided now, no promise in between.
    if (delivery.claim !== undefined && envelope.gen !== undefined) {
      claimed(item, delivery.claim);
      return;
    }
    claimRecord(envelope, l, delivery)
      .then((outcome) => claimed(item, outcome))
      .catch((error: unknown) => {
        // The store is unreachable: hand the delivery back (not run), after a pause so the broker does not spin it.
        settlement.report(error, envelope);
        settlement.defer(delivery, envelope, STORE_RETRY_MS);
        finished(item);
      });
  }

  /**
   * Claims a delivery's record by its generation; a message with no generation gets its record
   * first. A delivery the broker claimed as it handed it out (fused with the store) needs no call.
   */
  function claimRecord(envelope: Envelope, l: StoreLink, delivery: Delivery): Promise<ClaimOutcome> {
    if (delivery.claim !== undefined && envelope.gen !== undefined) return Promise.resolve(delivery.claim);
    const claim = (): Promise<ClaimOutcome> => l.claim.add({ id: envelope.id, gen: envelope.gen ?? 1, ttlMs: leaseMs, worker: workerId });
    if (envelope.gen !== undefined) return claim();
    return l.insert
      .add(newRecord({ meta: { ...envelope, gen: 1 }, payloadJson: JSON.stringify(envelope.payload) }, [], envelope.enqueuedAt))
      .then(claim);
  }

  /**
   * A decoded delivery given up at receipt (unknown job, crash loop): with a store its record is
   * claimed and finished `dead` before the dead letter, as a handler's dead letter is (rule 3).
   */
  function deadLetterJob(delivery: Delivery, envelope: Envelope, reason: DeadLetterReason, error: unknown): void {
    if (link === undefined) settlement.deadLetter(delivery, envelope, reason, error);
    else settlement.deadLetterUnclaimed(delivery, envelope, reason, error, claimRecord(envelope, link, delivery), STORE_RETRY_MS);
  }

  /** What a claim found decides: run, ack unrun, defer until the holder's claim runs out, or dead-letter a crash loop. */
  function claimed(item: HeldDelivery, outcome: ClaimOutcome): void {
    const { envelope, delivery } = item;
    if (outcome.outcome === "stale") {
      settlement.ackUnrun(delivery, envelope);
      finished(item);
      return;
    }
    if (outcome.outcome === "busy") {
      settlement.defer(delivery, envelope, Math.max(1, outcome.retryInMs));
      finished(item);
      return;
    }
    // A claim the broker made at fetch time was confirmed then (receipt set both), not now.
    if (item.fence !== outcome.fence) {
      item.fence = outcome.fence;
      item.claimConfirmedAt = Date.now();
    }
    if (outcome.claims > maxDeliveries) {
      item.completed = true;
      const error = new JobsError(
        "non-retryable",
        `[jobs] claimed ${outcome.claims} times without finishing (its workers keep dying or losing the claim)`,
      );
      settlement.deadLetterHeld(item, "crash-loop", error);
      finished(item);
    } else if (outcome.cancelRequested) {
      item.cancelHeard = true;
      runner.failed(item, new JobCancelledError(`[jobs] job ${envelope.id} was cancelled before this claim`));
    } else {
      runner.run(item);
    }
  }

  /** Heartbeat of the claims of running jobs: a refused renewal (taken over) aborts the handler; a cancel asked is heard. */
  function renewClaims(items: readonly HeldDelivery[]): void {
    const l = link as StoreLink;
    for (const item of items) {
      const sentAt = Date.now();
      l.renew.add({ id: item.envelope.id, fence: item.fence, ttlMs: leaseMs }).then(
        (outcome) => {
          if (!outcome.ok) {
            if (!item.completed) {
              const error = new LeaseLostError("[jobs] the job's claim in the store was taken over or has ended; its handler is aborted");
              events.emit("job.lease-lost", { job: jobOf(item), error: serializeError(error) });
              abortHandler(item, error);
            }
            return;
          }
          if (sentAt > item.claimConfirmedAt) item.claimConfirmedAt = sentAt;
          if (outcome.cancelRequested && !item.cancelHeard && !item.completed) {
            item.cancelHeard = true;
            abortHandler(item, new JobCancelledError(`[jobs] job ${item.envelope.id} was cancelled`));
          }
        },
        // The local deadline (checkClaims) aborts the handler if no renewal gets through in time.
        (error: unknown) => settlement.report(error, item.envelope),
      );
    }
  }

  /**
   * The local deadline (docs/concepts/records.md, rule 2): a running job whose claim no renewal
   * confirmed for a lease, less a margin, is aborted, whatever became of the renewals (a store that
   * does not answer never rejects them): by then another worker may take the job over.
   */
  function checkClaims(now: number): void {
    const deadline = leaseMs - Math.min(1_000, leaseMs / 10);
    for (const item of running) {
      if (item.fence === 0 || item.completed || item.controller?.signal.aborted === true) continue;
      if (now - item.claimConfirmedAt >= deadline) {
        const error = new LeaseLostError("[jobs] no renewal of the job's claim was confirmed within its lease; the handler is aborted");
        events.emit("job.lease-lost", { job: jobOf(item), error: serializeError(error) });
        abortHandler(item, error);
      }
    }
  }

  /** `ctx.progress`: the value goes to the record under this worker's fence. */
  async function progress(item: HeldDelivery, value: unknown): Promise<void> {
    if (link === undefined) throw needsStore("ctx.progress");
    assertJsonValue(value, "progress");
    const json = JSON.stringify(value);
    if (json.length * 3 > maxResultBytes && utf8Length(json) > maxResultBytes) {
      throw new PayloadTooLargeError(utf8Length(json), maxResultBytes, "progress");
    }
    if (item.fence === 0 || item.completed) throw new LeaseLostError("[jobs] progress after the job ended is not kept");
    if (!(await link.store.progress(item.envelope.id, item.fence, json))) {
      throw new LeaseLostError("[jobs] this worker no longer holds the job; its progress was not kept");
    }
  }

  function finished(item: HeldDelivery): void {
    running.delete(item);
    gate.finished(item);
    checkIdle();
    pump();
  }

  function checkIdle(): void {
    if (running.size > 0 || settlement.pending > 0) return;
    shutdown.idle();
    if (gate.waiting !== undefined) gate.startReserved();
    else if (buffer.size > 0) pump();
  }

  function releaseUnstarted(): void {
    for (const item of buffer.drain()) {
      // A suspect keeps its count (a release would reset it): shutdowns must not wash a crash loop away.
      if (isSuspect(item, threshold)) settlement.releaseKeepingCount(item, 0);
      // Claimed when it was fetched (a broker fused with the store): the record is handed back too.
      else if (item.fence !== 0) settlement.handBack(item);
      else settlement.release(item.delivery, item.envelope);
    }
    const waiting = gate.abandon();
    if (waiting !== undefined) settlement.releaseKeepingCount(waiting, 0);
  }

  function consumeOptions(queue: string): ConsumeOptions {
    let jobTimeoutMs: number | undefined;
    for (const r of handlers.values()) {
      if (r.job.queue === queue && (jobTimeoutMs === undefined || r.job.timeoutMs > jobTimeoutMs)) jobTimeoutMs = r.job.timeoutMs;
    }
    const records = link === undefined ? undefined : { store: link.store, ttlMs: leaseMs, worker: workerId };
    const base = jobTimeoutMs === undefined ? { prefetch, leaseMs } : { prefetch, leaseMs, jobTimeoutMs };
    return records === undefined ? base : { ...base, records };
  }

  async function startConsumers(): Promise<void> {
    const queues = options.queues ?? [...new Set([...handlers.values()].map((r) => r.job.queue))];
    if (queues.length === 0) throw new InvalidOptionsError("queues", "no queues to consume: register a handler or pass queues");
    state = "starting";
    heartbeat.start();
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
    sweeper?.start();
    pruner?.start();
    pump();
  }

  const worker: Worker<Ctx> = {
    on: events.on,
    get running() {
      return running.size;
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
    close: (closeOptions) => shutdown.close(closeOptions?.timeout),
  };

  return worker;
}
