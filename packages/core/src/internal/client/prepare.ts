/**
 * The checks and encoding of one job before it is recorded and published: options, payload
 * (JSON, schema, size), tags and metadata. Nothing here talks to the broker or the store.
 */
import type { BrokerCapabilities, OutgoingMessage } from "../../broker.js";
import type { Codec } from "../../codec.js";
import { assertMaxAttempts, assertTimeout, type JobDefinition } from "../../define-job.js";
import { parseDuration } from "../../duration.js";
import type { EnqueueOptions } from "../../enqueue.js";
import { type EnvelopeMeta, encodeLocalEnvelope, type LocalEnvelope, type TraceContext } from "../../envelope.js";
import { InvalidOptionsError, JobValidationError, PayloadTooLargeError, UnsupportedError } from "../../errors.js";
import { assertJobId } from "../../names.js";
import { priorityLevel } from "../../priority.js";
import { needsStore } from "../../records.js";
import { physicalQueue } from "../../routing.js";
import type { TracingSpan } from "../../tracing.js";
import { assertJsonValue, utf8Length } from "../json.js";
import { describeIssues, runSchema } from "../schema.js";
import type { Tracing } from "../tracing.js";

/** A job checked and encoded, ready to be recorded and published. */
export interface Prepared {
  /** The envelope as recorded and sent (its payload sealed when the codec encrypts). */
  readonly local: LocalEnvelope;
  /** The payload's JSON before the codec sealed it (what taps see). */
  readonly plainJson: string;
  readonly physical: string;
  readonly message: OutgoingMessage;
  readonly tags: readonly string[];
  /** The enqueue's `send` span, with tracing on: the client ends it once the outcome is known. */
  readonly span: TracingSpan | undefined;
}

/** What preparing depends on: the broker's capabilities and name, the client's payload limit, and whether it has a store. */
export interface PrepareTarget {
  readonly caps: BrokerCapabilities;
  /** Largest encoded job accepted, in bytes. */
  readonly limit: number;
  readonly brokerName: string;
  /** The client has a job store. */
  readonly stored: boolean;
  /** The client's tracing, if on. */
  readonly tracing: Tracing | undefined;
  /** Signs and encrypts (`IDENTITY_CODEC` when neither is configured). */
  readonly codec: Codec;
}

/** Most tags per job, and longest tag. */
const MAX_TAGS = 20;
const MAX_TAG_LENGTH = 128;

const NO_TAGS: readonly string[] = Object.freeze([]);

/** Checks and encodes one job for `enqueue` or `enqueueMany`; throws a typed error naming what is wrong. */
export async function prepare(
  job: JobDefinition<unknown, unknown>,
  payload: unknown,
  opts: EnqueueOptions | undefined,
  now: number,
  target: PrepareTarget,
): Promise<Prepared> {
  const { caps, limit, brokerName, stored, tracing, codec } = target;
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
    if (caps.dedupeWindowMs <= 0 && !stored) {
      throw new UnsupportedError(
        `[jobs] [${brokerName}] cannot deduplicate by id, so a caller-chosen id would not be idempotent; omit "id", or pass a job store (which dedupes ids on every broker)`,
      );
    }
    id = o.id;
  } else {
    id = crypto.randomUUID();
  }
  if (o.tags !== undefined && !stored) throw needsStore("tags");
  const tags = o.tags === undefined ? NO_TAGS : checkTags(o.tags);
  if (o.metadata !== undefined) checkMetadata(o.metadata);
  if (o.trace !== undefined && !isTraceContext(o.trace)) {
    throw new InvalidOptionsError("trace", "expected { traceparent, tracestate? } (strings)");
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
  // With tracing, the envelope carries the `send` span's context (a child of `o.trace`, if given).
  let span: TracingSpan | undefined;
  if (tracing !== undefined) {
    const sent = tracing.send(job.name, job.queue, o.trace);
    span = sent.span;
    meta.trace = sent.trace;
  } else if (o.trace !== undefined) {
    meta.trace = { ...o.trace };
  }
  if (o.metadata !== undefined) meta.meta = { ...o.metadata };
  if (stored) meta.gen = 1;
  const plainJson = JSON.stringify(payload);
  const payloadJson = codec.active ? codec.sealPayload(plainJson, id, job.name) : plainJson;
  const local: LocalEnvelope = { meta, payloadJson };
  const body = codec.active ? codec.sign(encodeLocalEnvelope(local)) : encodeLocalEnvelope(local);
  // What taps (test recorders) see must not change with the caller's payload object either.
  if (body.length * 3 > limit) {
    const size = utf8Length(body);
    if (size > limit) {
      const error = new PayloadTooLargeError(size, limit);
      if (span !== undefined) tracing?.sent(span, undefined, false, error);
      throw error;
    }
  }
  const delayMs = Math.min(Math.max(0, runAt - now), caps.maxDelayMs);
  // With a store the record dedupes ids: the broker's dedupe window must not drop a publish the record says is new.
  const dedupe = !stored;
  return {
    local,
    plainJson,
    physical: physicalQueue(job.queue, level, caps),
    // With a codec the pre-split form holds the payload sealed too; a worker still checks the body's signature first.
    message: { id, body, priority: level, delayMs, dedupe, generatedId: o.id === undefined, local },
    tags,
    span,
  };
}

function isTraceContext(trace: unknown): trace is TraceContext {
  if (typeof trace !== "object" || trace === null) return false;
  const t = trace as Record<string, unknown>;
  return (
    typeof t.traceparent === "string" &&
    (t.tracestate === undefined || typeof t.tracestate === "string") &&
    (t.firstAttempt === undefined || typeof t.firstAttempt === "string")
  );
}

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

function checkMetadata(meta: unknown): void {
  if (typeof meta !== "object" || meta === null || Array.isArray(meta) || Object.getPrototypeOf(meta) !== Object.prototype) {
    throw new InvalidOptionsError("metadata", "expected a plain object of strings, numbers and booleans");
  }
  const keys = Object.keys(meta);
  if (keys.length > 64) throw new InvalidOptionsError("metadata", "at most 64 keys");
  for (const key of keys) {
    const value = (meta as Record<string, unknown>)[key];
    // Values are primitives, so only `__proto__` can reach a prototype (see forbiddenKey).
    if (key === "__proto__" || key.length > 128) {
      throw new InvalidOptionsError(`metadata.${key.slice(0, 32)}`, "key not allowed");
    }
    if (!(typeof value === "string" || typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value)))) {
      throw new InvalidOptionsError(`metadata.${key}`, "values must be strings, finite numbers or booleans");
    }
  }
}
