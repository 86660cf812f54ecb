import type { Broker, PublishOutcome } from "./broker.js";
import { clock } from "./clock.js";
import { type CodecOptions, createCodec } from "./codec.js";
import type { JobDefinition } from "./define-job.js";
import type { EnqueuedJob, EnqueueItem, EnqueueOptions, ResultOptions } from "./enqueue.js";
import { type Envelope, type EnvelopeMeta, fromLocalEnvelope } from "./envelope.js";
import {
  BrokerClosedError,
  BulkEnqueueError,
  type BulkItemOutcome,
  EnqueueOutcomeUnknownError,
  InvalidOptionsError,
  JobsError,
  redact,
} from "./errors.js";
import { type ClientEventMap, Emitter, type JobInfo } from "./events.js";
import { type Prepared, prepare } from "./internal/client/prepare.js";
import { ClientRecords, Handle } from "./internal/client/records.js";
import { forwardingBrokerEntries } from "./internal/entries.js";
import { Tracing } from "./internal/tracing.js";
import { assertLogger, type LoggerOption } from "./logger.js";
import { type CancelOutcome, type JobPage, type JobRecord, type ListJobsOptions, needsStore, storeOption } from "./records.js";
import type { JobStore } from "./store.js";
import { assertTracing, type TracingOptions } from "./tracing.js";

export type { EnqueuedJob, EnqueueItem, EnqueueOptions, ResultOptions } from "./enqueue.js";

/** Options of `createClient`. */
export interface ClientOptions {
  /** The broker jobs are published to. */
  readonly broker: Broker;
  /** Largest encoded job accepted, in bytes; never above the broker's own limit. @default the broker's `maxPayloadBytes` */
  readonly maxPayloadBytes?: number;
  /**
   * Where the broker's warnings and errors are logged (pino, console, …: `Logger`), when the
   * broker was not given this logger itself. `false` adds nothing.
   * @default none: the broker's own default applies
   */
  readonly logger?: LoggerOption;
  /**
   * The job store that keeps a record of every job this client enqueues (docs/concepts/records.md):
   * `getJob`, `listJobs`, `cancel`, `result()` and `tags` need it. The worker needs the same store.
   * @default none: jobs are broker messages only
   */
  readonly store?: JobStore;
  /**
   * OpenTelemetry tracing (docs/concepts/observability.md): a `send` span per enqueue, whose
   * context the job carries to the worker. Pass the API module: `{ api }` after
   * `import * as api from "@opentelemetry/api"`. @default off: nothing of OpenTelemetry is loaded
   */
  readonly tracing?: TracingOptions;
  /**
   * Signing and encryption of every job this client enqueues (docs/security.md): give workers and
   * the admin API the same keys. A bad key throws `CodecKeyError` here.
   * @default none: jobs are sent as plain, unsigned JSON
   */
  readonly codec?: CodecOptions;
}

/** A function that sees every envelope a client got accepted (used by `@jobs/core/testing`). */
export type EnqueueTap = (envelope: Envelope, duplicate: boolean) => void;

/** Symbol under which a client accepts taps; internal to `@jobs/core/testing`. */
export const kTap: unique symbol = Symbol.for("@jobs/core/client-tap");

/** Enqueues jobs. Safe to share across requests; holds no connection of its own. */
export interface Client {
  /** Validate, encode and durably publish one job; resolves once the broker accepted it. */
  enqueue<I>(job: JobDefinition<I, unknown>, payload: I, options?: EnqueueOptions): Promise<EnqueuedJob>;
  /**
   * Enqueue many jobs, batched per queue. Every item is validated first; if any is invalid nothing
   * is sent. Rejects with `BulkEnqueueError` (per-item outcomes) when any item was not accepted.
   */
  enqueueMany(items: readonly EnqueueItem[]): Promise<EnqueuedJob[]>;
  /** The record of a job, or null when the store has none (unknown id, or pruned). Needs a store. */
  getJob(id: string): Promise<JobRecord | null>;
  /** Records matching every filter given, oldest enqueue first, a page at a time. Needs a store. */
  listJobs(options?: ListJobsOptions): Promise<JobPage>;
  /**
   * Cancels a job: a waiting, scheduled or retrying one never starts (`cancelled`); a running one
   * gets its abort signal at its worker's next heartbeat (`cancel-requested`) and ends `cancelled`
   * unless its handler returns first; a finished one is left alone (`finished`). Needs a store.
   */
  cancel(id: string): Promise<CancelOutcome>;
  /**
   * Waits for the outcome of job `id` (see `EnqueuedJob.result`); an id with no record rejects at
   * once with `JobNotFoundError`. Needs a store.
   */
  result<O = unknown>(id: string, options?: ResultOptions): Promise<O>;
  /**
   * Closes the client: pending `result()` waits reject at once with `BrokerClosedError`, and so does
   * every later call. The broker and the store stay open (close them yourself). Idempotent.
   */
  close(): Promise<void>;
  /** Subscribe to client events. */
  readonly on: Emitter<ClientEventMap>["on"];
  /** @internal Lets `recordEnqueued` from `@jobs/core/testing` see accepted envelopes. */
  [kTap](tap: EnqueueTap): () => void;
}

/** Creates a client that enqueues jobs on `options.broker`. */
export function createClient(options: ClientOptions): Client {
  if (typeof options !== "object" || options === null || typeof options.broker?.publish !== "function") {
    throw new InvalidOptionsError("broker", "createClient needs a broker");
  }
  const broker = options.broker;
  const caps = broker.capabilities;
  const limit = Math.min(options.maxPayloadBytes ?? caps.maxPayloadBytes, caps.maxPayloadBytes);
  if (!(limit > 0)) throw new InvalidOptionsError("maxPayloadBytes", "expected a positive number of bytes");
  assertLogger(options.logger);
  const store = storeOption(options.store, broker.name);
  const codec = createCodec(options.codec);
  const records = store === undefined ? undefined : new ClientRecords(store, broker.name, codec);
  assertTracing(options.tracing);
  const tracing = options.tracing === undefined ? undefined : new Tracing(options.tracing, broker.name);
  const target = { caps, limit, brokerName: broker.name, stored: store !== undefined, tracing, codec };
  const events = new Emitter<ClientEventMap>();
  const taps = new Set<EnqueueTap>();

  function accepted(p: Prepared, duplicate: boolean, started: number): EnqueuedJob {
    const e = p.local.meta;
    if (p.span !== undefined) tracing?.sent(p.span, e, duplicate);
    // Taps get their own parsed copy: what they saw must not change with the caller's payload object.
    for (const tap of taps)
      tap(fromLocalEnvelope(p.local.payloadJson === p.plainJson ? p.local : { meta: e, payloadJson: p.plainJson }), duplicate);
    if (events.has("job.enqueued")) {
      events.emit("job.enqueued", { job: infoOf(e), duplicate, durationMs: clock.now() - started });
    }
    return new Handle(e, duplicate, client);
  }

  /** The `send` spans of a bulk enqueue's jobs not accepted end with the reason. */
  function endSpans(prepared: readonly (Prepared | undefined)[], error: unknown): void {
    const outcomes = error instanceof BulkEnqueueError ? error.outcomes : undefined;
    prepared.forEach((p, i) => {
      const outcome = outcomes?.[i];
      if (p?.span === undefined || outcome?.status === "accepted") return;
      tracing?.sent(p.span, p.local.meta, false, outcome?.status === "rejected" ? outcome.error : error);
    });
  }

  let closed: Promise<void> | undefined;

  function open(): void {
    if (closed !== undefined) throw new BrokerClosedError("[jobs] client is closed");
  }

  function withStore(what: string): ClientRecords {
    open();
    if (records === undefined) throw needsStore(what);
    return records;
  }

  const client: Client = forwardingBrokerEntries(broker, options.logger, {
    on: events.on,
    [kTap](tap: EnqueueTap): () => void {
      taps.add(tap);
      return () => taps.delete(tap);
    },
    async enqueue(job, payload, opts) {
      open();
      const started = clock.now();
      const p = await prepare(job as JobDefinition<unknown, unknown>, payload, opts, Date.now(), target);
      try {
        if (records !== undefined && (await records.insert(p)) === "exists") return accepted(p, true, started);
        let outcomes: PublishOutcome[];
        try {
          outcomes = await broker.publish(p.physical, [p.message]);
        } catch (error) {
          const failure = asPublishError(error, broker.name);
          throw records === undefined ? failure : await records.afterPublish(p, { ok: false, error: failure });
        }
        const outcome = outcomes[0];
        if (records !== undefined) {
          const failure = await records.afterPublish(p, outcome);
          if (failure !== undefined) throw failure;
        } else {
          if (outcome === undefined) throw new EnqueueOutcomeUnknownError(`[jobs] [${broker.name}] publish returned no outcome`);
          if (!outcome.ok) throw outcome.error;
        }
        return accepted(p, (outcome as PublishOutcome & { ok: true }).duplicate, started);
      } catch (error) {
        if (p.span !== undefined) tracing?.sent(p.span, p.local.meta, false, error);
        throw error;
      }
    },
    async enqueueMany(items) {
      open();
      const started = clock.now();
      if (!Array.isArray(items)) throw new InvalidOptionsError("items", "expected an array");
      const now = Date.now();
      const prepared: (Prepared | undefined)[] = [];
      try {
        const outcomes: BulkItemOutcome[] = [];
        let invalid = 0;
        for (const item of items) {
          try {
            prepared.push(await prepare(item?.job, item?.payload, item?.options, now, target));
            outcomes.push({ status: "not-sent" });
          } catch (error) {
            if (!JobsError.isInstance(error)) throw error;
            prepared.push(undefined);
            outcomes.push({ status: "rejected", error });
            invalid++;
          }
        }
        if (invalid > 0) {
          throw new BulkEnqueueError(`[jobs] ${invalid} of ${items.length} jobs are invalid; nothing was sent`, outcomes);
        }
        const results: EnqueuedJob[] = new Array(items.length);
        let failed = 0;
        // With a store, every record first (one batch); ids that have one already are duplicates, not published again.
        const toPublish: number[] = [];
        if (records !== undefined) {
          await Promise.all(
            prepared.map(async (p, i) => {
              try {
                if ((await records.insert(p as Prepared)) === "exists") {
                  results[i] = accepted(p as Prepared, true, started);
                  outcomes[i] = { status: "accepted", id: results[i].id, duplicate: true };
                } else {
                  toPublish.push(i);
                }
              } catch (error) {
                outcomes[i] = { status: "rejected", error: error as JobsError };
                failed++;
              }
            }),
          );
          toPublish.sort((a, b) => a - b);
        } else {
          for (let i = 0; i < prepared.length; i++) toPublish.push(i);
        }
        const byQueue = new Map<string, number[]>();
        for (const i of toPublish) {
          const physical = (prepared[i] as Prepared).physical;
          const list = byQueue.get(physical);
          if (list === undefined) byQueue.set(physical, [i]);
          else list.push(i);
        }
        await Promise.all(
          [...byQueue].map(async ([queue, indexes]) => {
            let published: (PublishOutcome | undefined)[];
            try {
              published = await broker.publish(
                queue,
                indexes.map((i) => (prepared[i] as Prepared).message),
              );
            } catch (error) {
              const jobsError = asPublishError(error, broker.name);
              published = indexes.map(() => ({ ok: false, error: jobsError }));
            }
            await Promise.all(
              indexes.map(async (i, k) => {
                const p = prepared[i] as Prepared;
                const outcome = published[k];
                const failure =
                  records !== undefined
                    ? await records.afterPublish(p, outcome)
                    : outcome?.ok
                      ? undefined
                      : (outcome?.error ?? new EnqueueOutcomeUnknownError(`[jobs] [${broker.name}] publish returned no outcome`));
                if (failure === undefined && outcome?.ok) {
                  results[i] = accepted(p, outcome.duplicate, started);
                  outcomes[i] = { status: "accepted", id: results[i].id, duplicate: outcome.duplicate };
                } else {
                  outcomes[i] = { status: "rejected", error: failure as JobsError };
                  failed++;
                }
              }),
            );
          }),
        );
        if (failed > 0) {
          throw new BulkEnqueueError(`[jobs] ${failed} of ${items.length} jobs were not accepted; see outcomes`, outcomes);
        }
        return results;
      } catch (error) {
        if (tracing !== undefined) endSpans(prepared, error);
        throw error;
      }
    },
    getJob: async (id) => withStore("getJob").getJob(id),
    listJobs: async (query = {}) => withStore("listJobs").listJobs(query),
    cancel: async (id) => withStore("cancel").cancel(id),
    result: async (id, resultOptions) => (await withStore("result()").result(id, resultOptions)) as never,
    close() {
      closed ??= records === undefined ? Promise.resolve() : records.close();
      return closed;
    },
  });
  return client;
}

/**
 * A publish that threw something other than a library error may or may not have stored the job:
 * report it as ambiguous, never as a definite rejection.
 */
function asPublishError(error: unknown, brokerName: string): JobsError {
  if (JobsError.isInstance(error)) return error;
  return new EnqueueOutcomeUnknownError(`[jobs] [${brokerName}] publish failed: ${redact(String((error as Error)?.message ?? error))}`, {
    cause: error,
  });
}

/** The event view of an envelope (no payload). */
export function infoOf(e: EnvelopeMeta): JobInfo {
  const info: { -readonly [K in keyof JobInfo]: JobInfo[K] } = {
    id: e.id,
    name: e.name,
    queue: e.queue,
    attempt: e.attempt,
    maxAttempts: e.maxAttempts,
    priority: e.priority,
    enqueuedAt: e.enqueuedAt,
    runAt: e.runAt,
  };
  if (e.meta !== undefined) info.metadata = e.meta;
  if (e.trace !== undefined) info.trace = e.trace;
  return info;
}
