import type { Broker, OutgoingMessage, PublishOutcome } from "./broker.js";
import { clock } from "./clock.js";
import { assertMaxAttempts, assertTimeout, type JobDefinition } from "./define-job.js";
import { type Duration, parseDuration } from "./duration.js";
import {
  type Envelope,
  type EnvelopeMeta,
  encodeLocalEnvelope,
  fromLocalEnvelope,
  type LocalEnvelope,
  type Metadata,
  type TraceContext,
} from "./envelope.js";
import {
  BulkEnqueueError,
  type BulkItemOutcome,
  EnqueueOutcomeUnknownError,
  InvalidOptionsError,
  JobsError,
  JobValidationError,
  PayloadTooLargeError,
  redact,
  UnsupportedError,
} from "./errors.js";
import { type ClientEventMap, Emitter, type JobInfo } from "./events.js";
import { forwardingBrokerEntries } from "./internal/entries.js";
import { assertJsonValue, utf8Length } from "./internal/json.js";
import { describeIssues, runSchema } from "./internal/schema.js";
import { ResultWaiter } from "./internal/store/results.js";
import { assertLogger, type LoggerOption } from "./logger.js";
import { assertJobId } from "./names.js";
import { type Priority, priorityLevel } from "./priority.js";
import {
  type CancelOutcome,
  type JobPage,
  type JobRecord,
  type ListJobsOptions,
  needsStore,
  newRecord,
  recordOf,
  StoreLink,
  storeOption,
} from "./records.js";
import { physicalQueue } from "./routing.js";
import { type InsertOutcome, JOB_STATUSES, type JobStore } from "./store.js";

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
}

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
  /** Waits for the outcome of job `id` (see `EnqueuedJob.result`). Needs a store. */
  result<O = unknown>(id: string, options?: ResultOptions): Promise<O>;
  /** Subscribe to client events. */
  readonly on: Emitter<ClientEventMap>["on"];
  /** @internal Lets `recordEnqueued` from `@jobs/core/testing` see accepted envelopes. */
  [kTap](tap: EnqueueTap): () => void;
}

interface Prepared {
  readonly local: LocalEnvelope;
  readonly physical: string;
  readonly message: OutgoingMessage;
  readonly tags: readonly string[];
}

/** Most tags per job, and longest tag. */
const MAX_TAGS = 20;
const MAX_TAG_LENGTH = 128;

/** A job the broker accepted, with `result()` on its prototype (no closure per job). */
class Handle implements EnqueuedJob {
  readonly id: string;
  readonly name: string;
  readonly queue: string;
  readonly runAt: number;
  readonly priority: Priority;
  readonly duplicate: boolean;
  readonly #client: Client;
  constructor(meta: EnvelopeMeta, duplicate: boolean, client: Client) {
    this.id = meta.id;
    this.name = meta.name;
    this.queue = meta.queue;
    this.runAt = meta.runAt;
    this.priority = meta.priority;
    this.duplicate = duplicate;
    this.#client = client;
  }
  result<R = unknown>(options?: ResultOptions): Promise<R> {
    return this.#client.result<R>(this.id, options);
  }
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
  const link = store === undefined ? undefined : new StoreLink(store);
  const waiter = store === undefined ? undefined : new ResultWaiter(store);
  const events = new Emitter<ClientEventMap>();
  const taps = new Set<EnqueueTap>();

  async function prepare(
    job: JobDefinition<unknown, unknown>,
    payload: unknown,
    opts: EnqueueOptions | undefined,
    now: number,
  ): Promise<Prepared> {
    if (typeof job !== "object" || job === null || typeof job.name !== "string" || typeof job.backoff !== "function") {
      throw new InvalidOptionsError("job", "expected a job definition from defineJob()");
    }
    const o = opts ?? {};
    let runAt = now;
    if (o.delay !== undefined && o.runAt !== undefined) {
      throw new InvalidOptionsError("delay", "give either delay or runAt, not both");
    }
    if (o.delay !== undefined) runAt = now + Math.ceil(parseDuration(o.delay, "delay"));
    if (o.runAt !== undefined) {
      const t = o.runAt instanceof Date ? o.runAt.getTime() : o.runAt;
      if (typeof t !== "number" || !Number.isFinite(t) || t < 0) {
        throw new InvalidOptionsError("runAt", "expected a valid Date or ms since the epoch");
      }
      runAt = Math.max(now, Math.ceil(t));
    }
    const priority = o.priority ?? job.priority;
    const level = priorityLevel(priority, "priority");
    const maxAttempts = o.maxAttempts ?? job.maxAttempts;
    assertMaxAttempts(maxAttempts, "maxAttempts");
    const timeout = o.timeout === undefined ? job.timeoutMs : assertTimeout(o.timeout, "timeout");
    let id: string;
    if (o.id !== undefined) {
      assertJobId(o.id, "id");
      if (caps.dedupeWindowMs <= 0 && store === undefined) {
        throw new UnsupportedError(
          `[jobs] [${broker.name}] cannot deduplicate by id, so a caller-chosen id would not be idempotent; omit "id", or pass a job store (which dedupes ids on every broker)`,
        );
      }
      id = o.id;
    } else {
      id = crypto.randomUUID();
    }
    if (o.tags !== undefined && store === undefined) throw needsStore("tags");
    const tags = o.tags === undefined ? NO_TAGS : checkTags(o.tags);
    if (o.metadata !== undefined) checkMetadata(o.metadata);
    if (o.trace !== undefined && (typeof o.trace !== "object" || typeof o.trace?.traceparent !== "string")) {
      throw new InvalidOptionsError("trace", "expected { traceparent, tracestate? }");
    }
    assertJsonValue(payload, "payload");
    if (job.schema !== undefined) {
      let result = runSchema(job.schema, payload);
      if (result instanceof Promise) result = await result;
      if (!result.ok) {
        throw new JobValidationError(`[jobs] payload of "${job.name}" is invalid: ${describeIssues(result.issues)}`, result.issues);
      }
    }
    // Metadata and trace are copied: the envelope must not change if the caller's objects do.
    const meta: { -readonly [K in keyof EnvelopeMeta]: EnvelopeMeta[K] } = {
      v: 1,
      id,
      name: job.name,
      queue: job.queue,
      attempt: 1,
      maxAttempts,
      priority,
      enqueuedAt: now,
      runAt,
      timeout,
    };
    if (o.trace !== undefined) meta.trace = { ...o.trace };
    if (o.metadata !== undefined) meta.meta = { ...o.metadata };
    if (store !== undefined) meta.gen = 1;
    const payloadJson = JSON.stringify(payload);
    const local: LocalEnvelope = { meta, payloadJson };
    const body = encodeLocalEnvelope(local);
    // What taps (test recorders) see must not change with the caller's payload object either.
    if (body.length * 3 > limit) {
      const size = utf8Length(body);
      if (size > limit) throw new PayloadTooLargeError(size, limit);
    }
    const delayMs = Math.min(Math.max(0, runAt - now), caps.maxDelayMs);
    // With a store the record dedupes ids: the broker's dedupe window must not drop a publish the record says is new.
    const dedupe = store === undefined;
    return {
      local,
      physical: physicalQueue(job.queue, level, caps),
      message: { id, body, priority: level, delayMs, dedupe, generatedId: o.id === undefined, local },
      tags,
    };
  }

  function accepted(p: Prepared, duplicate: boolean, started: number): EnqueuedJob {
    const e = p.local.meta;
    // Taps get their own parsed copy: what they saw must not change with the caller's payload object.
    for (const tap of taps) tap(fromLocalEnvelope(p.local), duplicate);
    if (events.has("job.enqueued")) {
      events.emit("job.enqueued", { job: infoOf(e), duplicate, durationMs: clock.now() - started });
    }
    return new Handle(e, duplicate, client);
  }

  /**
   * Writes the record of a job before its publish (docs/concepts/records.md, rule 1). Resolves
   * "exists" when the id has a record already (a duplicate: nothing is published). A store error
   * that may have committed the record rejects as outcome-unknown: the sweeper may publish it later.
   */
  async function record(p: Prepared): Promise<InsertOutcome> {
    try {
      return await (link as StoreLink).insert.add(newRecord(p.local, p.tags, p.local.meta.enqueuedAt));
    } catch (error) {
      throw asStoreWriteError(error, (store as JobStore).name);
    }
  }

  /**
   * What a publish outcome means for a recorded job: accepted marks it published (off the caller's
   * path); a definite rejection voids the record first (`discarded`), so a job its caller saw
   * rejected never runs. Should the void fail, the caller hears outcome-unknown.
   */
  async function afterPublish(p: Prepared, outcome: PublishOutcome | undefined): Promise<JobsError | undefined> {
    const id = p.local.meta.id;
    if (outcome?.ok) {
      link?.published(id, 1, reportStoreError);
      return undefined;
    }
    const error = outcome?.error ?? new EnqueueOutcomeUnknownError(`[jobs] [${broker.name}] publish returned no outcome`);
    if (link === undefined || error.code === "enqueue-outcome-unknown") return error;
    try {
      await link.store.transition({ id, from: ["waiting", "scheduled"], gen: 1, to: "discarded" });
      return error;
    } catch (voidError) {
      return new EnqueueOutcomeUnknownError(
        `[jobs] [${broker.name}] rejected the job (${error.message}) and its record could not be voided; the sweeper may still publish it`,
        { cause: voidError },
      );
    }
  }

  /** A lost "published" mark costs only a duplicate publish by the sweeper, which the claim drops: nothing to report. */
  function reportStoreError(_error: unknown): void {}

  function withStore(what: string): StoreLink {
    if (link === undefined) throw needsStore(what);
    return link;
  }

  const client: Client = forwardingBrokerEntries(broker, options.logger, {
    on: events.on,
    [kTap](tap: EnqueueTap): () => void {
      taps.add(tap);
      return () => taps.delete(tap);
    },
    async enqueue(job, payload, opts) {
      const started = clock.now();
      const p = await prepare(job as JobDefinition<unknown, unknown>, payload, opts, Date.now());
      if (link !== undefined && (await record(p)) === "exists") return accepted(p, true, started);
      let outcomes: PublishOutcome[];
      try {
        outcomes = await broker.publish(p.physical, [p.message]);
      } catch (error) {
        const failure = await afterPublish(p, { ok: false, error: asPublishError(error, broker.name) });
        throw failure;
      }
      const outcome = outcomes[0];
      if (link !== undefined) {
        const failure = await afterPublish(p, outcome);
        if (failure !== undefined) throw failure;
      } else {
        if (outcome === undefined) throw new EnqueueOutcomeUnknownError(`[jobs] [${broker.name}] publish returned no outcome`);
        if (!outcome.ok) throw outcome.error;
      }
      return accepted(p, (outcome as PublishOutcome & { ok: true }).duplicate, started);
    },
    async enqueueMany(items) {
      const started = clock.now();
      if (!Array.isArray(items)) throw new InvalidOptionsError("items", "expected an array");
      const now = Date.now();
      const prepared: (Prepared | undefined)[] = [];
      const outcomes: BulkItemOutcome[] = [];
      let invalid = 0;
      for (const item of items) {
        try {
          prepared.push(await prepare(item?.job, item?.payload, item?.options, now));
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
      if (link !== undefined) {
        await Promise.all(
          prepared.map(async (p, i) => {
            try {
              if ((await record(p as Prepared)) === "exists") {
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
                link !== undefined
                  ? await afterPublish(p, outcome)
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
    },
    async getJob(id) {
      const l = withStore("getJob");
      if (typeof id !== "string" || id.length === 0) throw new InvalidOptionsError("id", "expected a job id");
      const job = await l.store.get(id);
      return job === undefined ? null : recordOf(job);
    },
    async listJobs(query = {}) {
      const l = withStore("listJobs");
      const limitOption = query.limit ?? 100;
      if (!Number.isInteger(limitOption) || limitOption < 1 || limitOption > 1000) {
        throw new InvalidOptionsError("limit", `expected an integer from 1 to 1000, got ${String(limitOption)}`);
      }
      if (query.status !== undefined && !JOB_STATUSES.includes(query.status)) {
        throw new InvalidOptionsError("status", `expected one of ${JOB_STATUSES.join(", ")}`);
      }
      for (const key of ["queue", "name", "tag", "cursor"] as const) {
        const value = query[key];
        if (value !== undefined && (typeof value !== "string" || value.length === 0)) {
          throw new InvalidOptionsError(key, "expected a non-empty string");
        }
      }
      // A store may answer a short page with a cursor (it bounds each call's work): fill the page
      // from a few more calls, so a sparse filter does not hand the caller empty pages.
      const jobs: JobRecord[] = [];
      let cursor = query.cursor;
      for (let calls = 0; calls < LIST_CALLS && jobs.length < limitOption; calls++) {
        const page = await l.store.list({ ...query, limit: limitOption - jobs.length, ...(cursor === undefined ? {} : { cursor }) });
        for (const job of page.jobs) jobs.push(recordOf(job));
        cursor = page.cursor;
        if (cursor === undefined) break;
      }
      return cursor === undefined ? { jobs } : { jobs, cursor };
    },
    async cancel(id) {
      const l = withStore("cancel");
      if (typeof id !== "string" || id.length === 0) throw new InvalidOptionsError("id", "expected a job id");
      return l.store.cancel(id);
    },
    async result(id, resultOptions) {
      withStore("result()");
      const timeoutMs = parseDuration(resultOptions?.timeout ?? "30s", "timeout");
      return (await (waiter as ResultWaiter).wait(id, timeoutMs)) as never;
    },
  });
  return client;
}

const NO_TAGS: readonly string[] = Object.freeze([]);

/** Store calls one `listJobs` page may take to fill up. */
const LIST_CALLS = 10;

function checkTags(tags: unknown): readonly string[] {
  if (!Array.isArray(tags)) throw new InvalidOptionsError("tags", "expected an array of strings");
  if (tags.length > MAX_TAGS) throw new InvalidOptionsError("tags", `at most ${MAX_TAGS} tags`);
  for (const [i, tag] of tags.entries()) {
    if (typeof tag !== "string" || tag.length === 0 || tag.length > MAX_TAG_LENGTH) {
      throw new InvalidOptionsError(`tags[${i}]`, `expected a string of 1 to ${MAX_TAG_LENGTH} characters`);
    }
  }
  return [...new Set(tags as string[])];
}

/**
 * A record write that failed: definite when the store was closed or refused the credentials
 * (nothing was sent), else outcome-unknown, since the write may have committed and the sweeper
 * may publish it later (rule 1).
 */
function asStoreWriteError(error: unknown, storeName: string): JobsError {
  if (JobsError.isInstance(error) && (error.code === "store-closed" || (error.code === "store-connection" && !error.retryable))) {
    return error;
  }
  return new EnqueueOutcomeUnknownError(
    `[jobs] [${storeName}] writing the job's record failed: ${redact(String((error as Error)?.message ?? error))}; it may still run`,
    { cause: error },
  );
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

function checkMetadata(meta: unknown): void {
  if (typeof meta !== "object" || meta === null || Array.isArray(meta) || Object.getPrototypeOf(meta) !== Object.prototype) {
    throw new InvalidOptionsError("metadata", "expected a plain object of strings, numbers and booleans");
  }
  const keys = Object.keys(meta);
  if (keys.length > 64) throw new InvalidOptionsError("metadata", "at most 64 keys");
  for (const key of keys) {
    const value = (meta as Record<string, unknown>)[key];
    if (key === "__proto__" || key === "constructor" || key.length > 128) {
      throw new InvalidOptionsError(`metadata.${key.slice(0, 32)}`, "key not allowed");
    }
    if (!(typeof value === "string" || typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value)))) {
      throw new InvalidOptionsError(`metadata.${key}`, "values must be strings, finite numbers or booleans");
    }
  }
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
  return info;
}
