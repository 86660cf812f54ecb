/**
 * The options of `createWorker` and `Worker.close`, and their checks: every bad option throws at
 * construction, naming the field. Apart from worker.ts so that the worker stays the wiring of its parts.
 */

import type { Broker, BrokerCapabilities } from "./broker.js";
import type { CodecOptions } from "./codec.js";
import { type Duration, parseDuration } from "./duration.js";
import { InvalidOptionsError } from "./errors.js";
import type { LoggerOption } from "./logger.js";
import { assertQueueName } from "./names.js";
import { parseRetain, type RetainLimits, type RetainPolicy } from "./retention.js";
import type { FinishedStatus, JobStore } from "./store.js";
import type { TracingOptions } from "./tracing.js";

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
   * Signatures and encryption (docs/security.md), the same keys as the clients'. With `signing`, a
   * message not signed by one of its keys is dead-lettered unrun with reason `signature`; with
   * `encryption`, payloads are decrypted before validation and stay sealed in everything the
   * worker re-sends (retries, dead letters, records). A bad key throws `CodecKeyError` here.
   * @default none
   */
  readonly codec?: CodecOptions;
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
  /**
   * OpenTelemetry tracing (docs/concepts/observability.md): a `process` span per attempt, a child
   * of the enqueue's `send` span, with the handler running inside it. Pass the API module: `{ api }`
   * after `import * as api from "@opentelemetry/api"`. @default off: nothing of OpenTelemetry is loaded
   */
  readonly tracing?: TracingOptions;
  /**
   * A handler still running this long after its timeout (it ignores its signal) is reported with
   * `job.overdue`. It keeps its concurrency slot until it ends, whatever this says. @default "10s"
   */
  readonly overdueAfter?: Duration;
  /**
   * Start another attempt of a job on this worker while a timed-out handler of it still runs here.
   * By default that attempt is given back (`job.deferred`, a second) until the old handler ends:
   * two copies of one job never run at once on one worker. @default false
   */
  readonly overlapRetries?: boolean;
}

/** Options of `Worker.close`. */
export interface CloseOptions {
  /** Overrides the worker's `shutdownTimeout`. */
  readonly timeout?: Duration;
}

/** A worker's options, checked, with their defaults applied and durations in ms. */
export interface ParsedWorkerOptions {
  readonly concurrency: number;
  readonly prefetch: number;
  readonly agingMs: number;
  readonly leaseMs: number;
  readonly shutdownTimeoutMs: number;
  readonly maxDeliveries: number;
  readonly maxBytes: number;
  readonly maxResultBytes: number;
  readonly sweepAfterMs: number;
  readonly retain: Partial<Record<FinishedStatus, RetainLimits>> | undefined;
  readonly pruneEveryMs: number;
  readonly overdueAfterMs: number;
  readonly overlapRetries: boolean;
}

/** Checks a worker's options (all but `broker` and `store`) against its broker's capabilities. */
export function parseWorkerOptions(options: WorkerOptions<unknown>, caps: BrokerCapabilities): ParsedWorkerOptions {
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

  const maxResultBytes = options.maxResultBytes ?? 65_536;
  if (!Number.isInteger(maxResultBytes) || maxResultBytes < 2) {
    throw new InvalidOptionsError("maxResultBytes", `expected an integer of at least 2, got ${String(maxResultBytes)}`);
  }
  const sweepAfterMs = parseDuration(options.sweepAfter ?? "10s", "sweepAfter");
  if (sweepAfterMs < 100) throw new InvalidOptionsError("sweepAfter", "expected at least 100 ms");
  const retain = parseRetain(options.retain, "retain");
  const pruneEveryMs = parseDuration(options.pruneEvery ?? "1m", "pruneEvery");
  if (pruneEveryMs < 100) throw new InvalidOptionsError("pruneEvery", "expected at least 100 ms");
  const overdueAfterMs = parseDuration(options.overdueAfter ?? "10s", "overdueAfter");
  const overlapRetries = options.overlapRetries ?? false;
  if (typeof overlapRetries !== "boolean") {
    throw new InvalidOptionsError("overlapRetries", `expected a boolean, got ${typeof overlapRetries}`);
  }
  return {
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
  };
}
