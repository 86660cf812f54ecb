/**
 * The worker: public types and `createWorker`, which wires its parts (internal/worker/): receipt,
 * the priority buffer, the suspect gate, running handlers, deadlines, heartbeats, settlement and
 * shutdown. What each part needs from the others goes through its host interface.
 */

import { hostname } from "node:os";
import type { ConsumeOptions, Delivery, Subscription } from "./broker.js";
import { createCodec } from "./codec.js";
import type { JobDefinition } from "./define-job.js";
import { BrokerClosedError, InvalidOptionsError } from "./errors.js";
import { Emitter, type WorkerEventMap } from "./events.js";
import { forwardBrokerEntries, workerReporting } from "./internal/entries.js";
import { IntrusiveList } from "./internal/list.js";
import { Tracing } from "./internal/tracing.js";
import { Claims } from "./internal/worker/claims.js";
import { Deadlines } from "./internal/worker/deadlines.js";
import { type HeldDelivery, jobOf, type Registered } from "./internal/worker/held-delivery.js";
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
import { needsStore, StoreLink, storeOption } from "./records.js";
import { physicalQueues } from "./routing.js";
import { assertTracing } from "./tracing.js";
import { type CloseOptions, parseWorkerOptions, type WorkerOptions } from "./worker-options.js";

export type { JobContext, JobHandler } from "./job-context.js";
export type { CloseOptions, WorkerOptions } from "./worker-options.js";

/**
 * How long another attempt of a job is given back for while this worker still runs a timed-out
 * handler of it (`overlapRetries: false`): it comes back then, here or to another worker.
 */
const OVERDUE_RETRY_DELAY_MS = 1_000;

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
  /** Handlers running now, including those that outlived their timeout (they keep their concurrency slot until they end). */
  readonly running: number;
}

/** Creates a worker. Register handlers with `handle`, then `start`. */
export function createWorker<Ctx = undefined>(options: WorkerOptions<Ctx>): Worker<Ctx> {
  if (typeof options !== "object" || options === null || typeof options.broker?.consume !== "function") {
    throw new InvalidOptionsError("broker", "createWorker needs a broker");
  }
  const broker = options.broker;
  const caps = broker.capabilities;
  const {
    concurrency,
    prefetch,
    agingMs,
    leaseMs,
    shutdownTimeoutMs,
    maxDeliveries,
    maxBytes,
    maxResultBytes,
    sweepAfterMs,
    retain,
    pruneEveryMs,
    overdueAfterMs,
    overlapRetries,
  } = parseWorkerOptions(options as WorkerOptions<unknown>, caps);
  assertTracing(options.tracing);
  const tracing = options.tracing === undefined ? undefined : new Tracing(options.tracing, broker.name);
  const store = storeOption(options.store, broker.name);
  const codec = createCodec(options.codec);
  const link = store === undefined ? undefined : new StoreLink(store);
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
  const settlement = new Settlement({ events, maxDelayMs: caps.maxDelayMs, maxBytes, settled: checkIdle, link, codec });
  const deadlines = new Deadlines({
    running: () => running,
    timedOut: (item, error) => runner.timedOut(item, error),
    overdueAfterMs,
    overdue: (item, overdueMs) => events.emit("job.overdue", { job: jobOf(item), timeoutMs: item.envelope.timeout, overdueMs }),
  });
  const runner = new JobRunner<Ctx>({
    context: options.context as Ctx,
    events,
    deadlines,
    settlement,
    finished,
    released,
    progress,
    maxResultBytes,
    tracing,
  });
  const pruner = link === undefined ? undefined : new Pruner({ link, owner: workerId, events, handlers, retain, intervalMs: pruneEveryMs });
  const sweeper =
    link === undefined
      ? undefined
      : new Sweeper({ link, broker, codec, owner: workerId, events, graceMs: sweepAfterMs, intervalMs: Math.ceil(sweepAfterMs / 2) });
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
  const claims =
    link === undefined
      ? undefined
      : new Claims({
          link,
          events,
          leaseMs,
          maxDeliveries,
          worker: workerId,
          maxResultBytes,
          codec,
          settlement,
          runner,
          running: () => running,
          finished,
        });
  const receipt: ReceiveHost = {
    maxBytes,
    codec,
    maxDeliveries,
    handlers,
    settlement,
    // With a store, a job given up at receipt is claimed and finished `dead` before its dead letter (rule 3).
    deadLetterJob: (delivery, envelope, reason, error) =>
      claims === undefined
        ? settlement.deadLetter(delivery, envelope, reason, error)
        : claims.deadLetter(delivery, envelope, reason, error),
  };
  const heartbeat = new Heartbeat({
    leaseMs,
    canExtend: caps.leaseExtension,
    held,
    lost: (item, e) => settlement.report(e, item.envelope),
    renewClaims: claims === undefined ? undefined : (items) => claims.renew(items),
    checkClaims: claims === undefined ? undefined : (now) => claims.check(now),
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

  /** close() was called: the worker takes no more work. */
  function stopping(): boolean {
    return state === "closing" || state === "closed";
  }

  function onDelivery(delivery: Delivery): void {
    if (stopping()) {
      // A fused delivery arrives claimed: its record goes back to waiting too, as on shutdown.
      if (claims === undefined || !claims.handBackLate(delivery)) settlement.release(delivery, undefined);
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
      // else starts; it starts once nothing runs or settles (but handlers that outlived their
      // timeout, which may never end) and no other suspect is held, and nothing beside it.
      while (running.size < concurrency && buffer.size > 0 && state === "running" && !gate.reserved) {
        if (gate.buffered > 0) {
          if (running.size > runner.overdue || settlement.pending > 0 || !gate.reserveNext()) return;
          continue;
        }
        const item = buffer.shift(agedBefore);
        if (item === undefined) return;
        if (leaseExpired(item, Date.now(), leaseMs)) {
          settlement.releaseExpired(item);
          continue;
        }
        // Another attempt of a job whose timed-out handler still runs here waits: given back for a
        // while, it runs once that handler is over, or on another worker.
        if (runner.overdue > 0 && !overlapRetries && runner.isOverdue(item.envelope.id)) {
          settlement.deferUnstarted(item, OVERDUE_RETRY_DELAY_MS);
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
    if (claims === undefined) runner.run(item);
    else claims.claimAndRun(item);
  }

  /** `ctx.progress`: needs a store. */
  function progress(item: HeldDelivery, value: unknown): Promise<void> {
    if (claims === undefined) return Promise.reject(needsStore("ctx.progress"));
    return claims.progress(item, value);
  }

  function finished(item: HeldDelivery): void {
    running.delete(item);
    gate.finished(item);
    checkIdle();
    pump();
  }

  /** A job timed out and was settled while its handler runs on: it keeps its slot, but no longer holds up a suspect's turn. */
  function released(item: HeldDelivery): void {
    gate.finished(item);
    checkIdle();
    pump();
  }

  function checkIdle(): void {
    if (settlement.pending > 0) return;
    if (running.size === 0) shutdown.idle();
    // Handlers that outlived their timeout may never end: a suspect's turn does not wait for them.
    if (running.size > runner.overdue) return;
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
          const subscription = await broker.consume(physical.name, consumeOptions(queue), onDelivery);
          subscriptions.push(subscription);
          // close() came while consumers were being registered, and stopped only those it found: stop
          // this one too (what it delivered meanwhile was handed back by onDelivery), and start nothing.
          if (stopping()) {
            await subscription.stop();
            return;
          }
        }
      }
    } catch (error) {
      if (stopping()) throw error;
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
