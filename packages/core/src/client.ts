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
import { assertLogger, type LoggerOption } from "./logger.js";
import { assertJobId } from "./names.js";
import { type Priority, priorityLevel } from "./priority.js";
import { physicalQueue } from "./routing.js";

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
   * dedupe window is a no-op (`duplicate: true`). Rejected on brokers without dedupe.
   */
  readonly id?: string;
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
  /** Subscribe to client events. */
  readonly on: Emitter<ClientEventMap>["on"];
  /** @internal Lets `recordEnqueued` from `@jobs/core/testing` see accepted envelopes. */
  [kTap](tap: EnqueueTap): () => void;
}

interface Prepared {
  readonly local: LocalEnvelope;
  readonly physical: string;
  readonly message: OutgoingMessage;
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
      if (caps.dedupeWindowMs <= 0) {
        throw new UnsupportedError(
          `[jobs] [${broker.name}] cannot deduplicate by id, so a caller-chosen id would not be idempotent; omit "id"`,
        );
      }
      id = o.id;
    } else {
      id = crypto.randomUUID();
    }
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
    const payloadJson = JSON.stringify(payload);
    const local: LocalEnvelope = { meta, payloadJson };
    const body = encodeLocalEnvelope(local);
    // What taps (test recorders) see must not change with the caller's payload object either.
    if (body.length * 3 > limit) {
      const size = utf8Length(body);
      if (size > limit) throw new PayloadTooLargeError(size, limit);
    }
    const delayMs = Math.min(Math.max(0, runAt - now), caps.maxDelayMs);
    return {
      local,
      physical: physicalQueue(job.queue, level, caps),
      message: { id, body, priority: level, delayMs, dedupe: true, generatedId: o.id === undefined, local },
    };
  }

  function accepted(p: Prepared, outcome: PublishOutcome & { ok: true }, started: number): EnqueuedJob {
    const e = p.local.meta;
    // Taps get their own parsed copy: what they saw must not change with the caller's payload object.
    for (const tap of taps) tap(fromLocalEnvelope(p.local), outcome.duplicate);
    if (events.has("job.enqueued")) {
      events.emit("job.enqueued", { job: infoOf(e), duplicate: outcome.duplicate, durationMs: clock.now() - started });
    }
    return { id: e.id, name: e.name, queue: e.queue, runAt: e.runAt, priority: e.priority, duplicate: outcome.duplicate };
  }

  return forwardingBrokerEntries(broker, options.logger, {
    on: events.on,
    [kTap](tap: EnqueueTap): () => void {
      taps.add(tap);
      return () => taps.delete(tap);
    },
    async enqueue(job, payload, opts) {
      const started = clock.now();
      const p = await prepare(job as JobDefinition<unknown, unknown>, payload, opts, Date.now());
      let outcomes: PublishOutcome[];
      try {
        outcomes = await broker.publish(p.physical, [p.message]);
      } catch (error) {
        throw asPublishError(error, broker.name);
      }
      const outcome = outcomes[0];
      if (outcome === undefined) throw new EnqueueOutcomeUnknownError(`[jobs] [${broker.name}] publish returned no outcome`);
      if (!outcome.ok) throw outcome.error;
      return accepted(p, outcome, started);
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
      const byQueue = new Map<string, number[]>();
      prepared.forEach((p, i) => {
        const list = byQueue.get((p as Prepared).physical);
        if (list === undefined) byQueue.set((p as Prepared).physical, [i]);
        else list.push(i);
      });
      const results: EnqueuedJob[] = new Array(items.length);
      let failed = 0;
      await Promise.all(
        [...byQueue].map(async ([queue, indexes]) => {
          let published: PublishOutcome[];
          try {
            published = await broker.publish(
              queue,
              indexes.map((i) => (prepared[i] as Prepared).message),
            );
          } catch (error) {
            const jobsError = asPublishError(error, broker.name);
            for (const i of indexes) outcomes[i] = { status: "rejected", error: jobsError };
            failed += indexes.length;
            return;
          }
          indexes.forEach((i, k) => {
            const outcome = published[k];
            if (outcome?.ok) {
              results[i] = accepted(prepared[i] as Prepared, outcome, started);
              outcomes[i] = { status: "accepted", id: results[i].id, duplicate: outcome.duplicate };
            } else {
              outcomes[i] = {
                status: "rejected",
                error: outcome?.error ?? new EnqueueOutcomeUnknownError(`[jobs] [${broker.name}] publish returned no outcome`),
              };
              failed++;
            }
          });
        }),
      );
      if (failed > 0) {
        throw new BulkEnqueueError(`[jobs] ${failed} of ${items.length} jobs were not accepted; see outcomes`, outcomes);
      }
      return results;
    },
  });
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
