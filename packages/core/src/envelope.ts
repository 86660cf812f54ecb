import { EnvelopeDecodeError, PayloadTooLargeError, type SerializedError } from "./errors.js";
import { MAX_DEPTH, parseUntrustedJson, utf8Length } from "./internal/json.js";
import { JOB_ID, JOB_NAME } from "./names.js";
import { PRIORITIES, type Priority } from "./priority.js";

/** Longest delay a Node.js timer supports (about 24.8 days); longer timeouts would fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * Most attempts a job may have: enqueue refuses a larger `maxAttempts`, and a received envelope
 * with one (or with an `attempt` above its `maxAttempts`) is undecodable, so a forged count never
 * reaches a handler or the backoff.
 */
export const MAX_ATTEMPTS = 1_000;

/** Version of the envelope format written by this library (`v` field). */
export const ENVELOPE_VERSION = 1;

/** W3C trace context carried with a job. */
export interface TraceContext {
  /** `traceparent` header value. */
  readonly traceparent: string;
  /** `tracestate` header value. */
  readonly tracestate?: string;
  /**
   * `traceparent` of the first attempt's `process` span, set by a worker with tracing on when it
   * retries the job: later attempts' spans link to it (docs/concepts/observability.md).
   */
  readonly firstAttempt?: string;
}

/** Metadata values: small, flat, JSON scalars. */
export type Metadata = Readonly<Record<string, string | number | boolean>>;

/** Last failure of a job, as plain data, with when it happened. */
export interface EnvelopeError extends SerializedError {
  /** When the attempt failed, in ms since the epoch. */
  readonly at: number;
  /** Which attempt failed. */
  readonly attempt: number;
}

/**
 * The wire format of a job, versioned JSON (see docs/protocol.md). All times are integer
 * milliseconds since the Unix epoch, UTC.
 */
export interface Envelope {
  /** Format version. */
  readonly v: 1;
  /** Job id, unique per job; the idempotency key where the broker deduplicates. */
  readonly id: string;
  /** Job name, as given to `defineJob`. */
  readonly name: string;
  /** Logical queue. */
  readonly queue: string;
  /** The payload, plain JSON. */
  readonly payload: unknown;
  /** The attempt this delivery is, starting at 1. */
  readonly attempt: number;
  /** Attempts allowed before dead-lettering. */
  readonly maxAttempts: number;
  /** Priority name. */
  readonly priority: Priority;
  /** When the job was first enqueued. */
  readonly enqueuedAt: number;
  /** Not to be started before this time. */
  readonly runAt: number;
  /** Handler timeout in ms. */
  readonly timeout: number;
  /** Trace context of the enqueuing span, if any. */
  readonly trace?: TraceContext;
  /** Caller metadata. */
  readonly meta?: Metadata;
  /** The last failure, set on retries and dead letters. */
  readonly lastError?: EnvelopeError;
  /**
   * Deliveries of this message not settled by a handler, carried over when a worker handed it back
   * unrun (a crash suspect waiting beside another, docs/concepts/workers.md): the worker adds the
   * broker's delivery count to it, so handing a job back neither raises nor resets its count. Absent
   * (0) on enqueue; dropped on retry and dead-lettering.
   */
  readonly priorDeliveries?: number;
  /**
   * The publish generation of a job that has a record in a job store (docs/concepts/records.md):
   * a worker with a store claims the record with it, so a message of an older generation never
   * runs. Absent on jobs enqueued without a store.
   */
  readonly gen?: number;
}

/** Encodes an envelope to its wire text. */
export function encodeEnvelope(envelope: Envelope): string {
  return envelope.gen === undefined ? JSON.stringify(envelope) : withGenFirst(envelope);
}

/**
 * The JSON of an envelope (or its meta) with a generation: "v", "id" and "gen" first, in that
 * order, then the other fields. A broker fused with a job store (Redis) reads the id and the
 * generation from the front of the text without parsing it; fields after them (metadata, the
 * payload) are the user's, and could hold a "gen" of their own.
 */
function withGenFirst(envelope: EnvelopeMeta | Envelope): string {
  const { v: _, id, gen, ...rest } = envelope;
  return `{"v":1,"id":${JSON.stringify(id)},"gen":${String(gen)},${JSON.stringify(rest).slice(1)}`;
}

/** An envelope's fields except the payload. */
export type EnvelopeMeta = Omit<Envelope, "payload">;

/**
 * A message's envelope pre-split, for brokers that keep messages in this process: the fields
 * (created by core, never shared with user code) and the payload's JSON text. Handing it back
 * lets core skip decoding a body it encoded itself while the handler still gets a fresh copy
 * of the payload, parsed from JSON exactly as from a networked broker.
 */
export interface LocalEnvelope {
  /** Every field but the payload. */
  readonly meta: EnvelopeMeta;
  /** `JSON.stringify(payload)`. */
  readonly payloadJson: string;
}

/** Encodes the wire text of an envelope given as fields plus payload JSON (same format as `encodeEnvelope`). */
export function encodeLocalEnvelope(local: LocalEnvelope): string {
  const meta = local.meta.gen === undefined ? JSON.stringify(local.meta) : withGenFirst(local.meta);
  return `${meta.slice(0, -1)},"payload":${local.payloadJson}}`;
}

/** The envelope a `LocalEnvelope` stands for, with a freshly parsed payload. */
export function fromLocalEnvelope(local: LocalEnvelope): Envelope {
  // Field by field, not a spread: object spread of these objects costs several times more.
  const m = local.meta;
  const e: Mutable<Envelope> = {
    v: 1,
    id: m.id,
    name: m.name,
    queue: m.queue,
    payload: JSON.parse(local.payloadJson) as unknown,
    attempt: m.attempt,
    maxAttempts: m.maxAttempts,
    priority: m.priority,
    enqueuedAt: m.enqueuedAt,
    runAt: m.runAt,
    timeout: m.timeout,
  };
  if (m.trace !== undefined) e.trace = m.trace;
  if (m.meta !== undefined) e.meta = m.meta;
  if (m.lastError !== undefined) e.lastError = m.lastError;
  if (m.priorDeliveries !== undefined) e.priorDeliveries = m.priorDeliveries;
  if (m.gen !== undefined) e.gen = m.gen;
  return e;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * The form core writes on enqueue (`encodeLocalEnvelope`) up to the payload: the fields in their
 * fixed order, without the optional ones, as `JSON.stringify` spells them. Each part accepts exactly
 * what `decodeEnvelope`'s checks accept for that field, less what would need unescaping (a queue
 * name with `"`, `\` or a control character goes the general way) and numbers of more than 15
 * digits (exact as doubles below that).
 */
const CANONICAL = new RegExp(
  [
    '^\\{"v":1,"id":"',
    JOB_ID.source.slice(1, -1),
    '","name":"',
    JOB_NAME.source.slice(1, -1),
    '","queue":"[^"\\\\\\u0000-\\u001f]+","attempt":[1-9]\\d{0,14},"maxAttempts":[1-9]\\d{0,14},"priority":"(?:',
    PRIORITIES.join("|"),
    ')","enqueuedAt":(?:0|[1-9]\\d{0,14}),"runAt":(?:0|[1-9]\\d{0,14}),"timeout":[1-9]\\d{0,9},"payload":',
  ].join(""),
);

/** Each priority by the code of its first letter, which differs between all five. */
const PRIORITY_BY_INITIAL = new Map<number, Priority>(PRIORITIES.map((p) => [p.charCodeAt(0), p]));

/** Where the digits `number` read ended. */
let end = 0;

/** The decimal digits from `i` on as a number (the caller knows there are 1 to 15); sets `end`. */
function number(text: string, i: number): number {
  let n = 0;
  for (let c = text.charCodeAt(i) - 48; c >= 0 && c <= 9; c = text.charCodeAt(++i) - 48) n = n * 10 + c;
  end = i;
  return n;
}

/**
 * The fast path of `decodeEnvelope`: an envelope in the form core writes on enqueue (fields first,
 * payload last) is checked by one regular expression, its fields are read at the positions that
 * form fixes, and only the payload goes through `JSON.parse`. Parsing the ~200 bytes of fields as
 * JSON (two 13-digit timestamps among them) costs more than the payload of a typical job. Any
 * other text (whitespace, another key order, optional fields, escapes, text after the payload, a
 * payload the checks refuse) returns undefined and takes the general path, which also words the
 * error: both paths accept and refuse the same texts.
 */
function decodeCanonical(body: string): Envelope | undefined {
  if (body.charCodeAt(body.length - 1) !== 125 /* } */ || !CANONICAL.test(body)) return undefined;
  // Offsets are the lengths of the literal parts between values: `","name":"` is 10 characters, …
  let j = body.indexOf('"', 13);
  const id = body.slice(13, j);
  let i = j + 10;
  j = body.indexOf('"', i);
  const name = body.slice(i, j);
  i = j + 11;
  j = body.indexOf('"', i);
  const queue = body.slice(i, j);
  const attempt = number(body, j + 12);
  const maxAttempts = number(body, end + 15);
  if (maxAttempts > MAX_ATTEMPTS || attempt > maxAttempts) return undefined;
  const priority = PRIORITY_BY_INITIAL.get(body.charCodeAt(end + 13)) as Priority;
  const enqueuedAt = number(body, body.indexOf('"', end + 13) + 15);
  const runAt = number(body, end + 9);
  const timeout = number(body, end + 11);
  if (timeout > MAX_TIMER_MS) return undefined;
  let payload: unknown;
  try {
    payload = parseUntrustedJson(body.slice(end + 11, -1), MAX_DEPTH);
  } catch {
    return undefined;
  }
  return { v: 1, id, name, queue, payload, attempt, maxAttempts, priority, enqueuedAt, runAt, timeout };
}

/**
 * Decodes untrusted wire text into an envelope: size checked before parsing, depth-limited,
 * `__proto__` keys and `constructor` keys holding objects rejected, every field type-checked. Unknown fields are ignored
 * (forward compatibility); an unknown major version is rejected.
 */
export function decodeEnvelope(body: string, maxBytes: number): Envelope {
  // A string's UTF-8 size is at most 3× its length and at least its length: skip the exact count when safe.
  if (body.length * 3 > maxBytes) {
    const size = utf8Length(body);
    if (size > maxBytes) {
      throw new EnvelopeDecodeError(`message is ${size} bytes, over the limit of ${maxBytes}`, {
        cause: new PayloadTooLargeError(size, maxBytes, "received message"),
      });
    }
  }
  const canonical = decodeCanonical(body);
  if (canonical !== undefined) return canonical;
  let raw: unknown;
  try {
    // The envelope object is one level above the payload, which may itself be MAX_DEPTH deep.
    raw = parseUntrustedJson(body, MAX_DEPTH + 1);
  } catch (error) {
    throw new EnvelopeDecodeError((error as Error).message, { cause: error });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail("not a JSON object");
  const e = raw as Record<string, unknown>;
  if (e.v !== ENVELOPE_VERSION) fail(`unsupported version ${JSON.stringify(e.v)}`);
  if (typeof e.id !== "string" || !JOB_ID.test(e.id)) fail("bad id");
  if (typeof e.name !== "string" || !JOB_NAME.test(e.name)) fail("bad name");
  if (typeof e.queue !== "string" || e.queue.length === 0) fail("bad queue");
  if (!("payload" in e)) fail("missing payload");
  if (!isPositiveInt(e.attempt)) fail("bad attempt");
  if (!isPositiveInt(e.maxAttempts) || e.maxAttempts > MAX_ATTEMPTS) fail(`bad maxAttempts (an integer from 1 to ${MAX_ATTEMPTS})`);
  if (e.attempt > e.maxAttempts) fail("bad attempt (above maxAttempts)");
  if (typeof e.priority !== "string" || !(PRIORITIES as readonly string[]).includes(e.priority)) fail("bad priority");
  if (!isTime(e.enqueuedAt)) fail("bad enqueuedAt");
  if (!isTime(e.runAt)) fail("bad runAt");
  if (typeof e.timeout !== "number" || !(e.timeout >= 1 && e.timeout <= MAX_TIMER_MS)) fail("bad timeout");
  if (e.meta !== undefined && (typeof e.meta !== "object" || e.meta === null || Array.isArray(e.meta))) fail("bad meta");
  if (
    e.trace !== undefined &&
    (typeof e.trace !== "object" ||
      e.trace === null ||
      typeof (e.trace as TraceContext).traceparent !== "string" ||
      !isOptionalString((e.trace as TraceContext).tracestate) ||
      !isOptionalString((e.trace as TraceContext).firstAttempt))
  ) {
    fail("bad trace");
  }
  if (e.priorDeliveries !== undefined && !(isPositiveInt(e.priorDeliveries) && e.priorDeliveries <= MAX_PRIOR_DELIVERIES)) {
    fail("bad priorDeliveries");
  }
  if (e.gen !== undefined && !isPositiveInt(e.gen)) fail("bad gen");
  return raw as Envelope;
}

/** Far above any sensible `maxDeliveries`: a larger carried count is not something core wrote. */
const MAX_PRIOR_DELIVERIES = 1_000_000;

function fail(reason: string): never {
  throw new EnvelopeDecodeError(reason);
}

function isPositiveInt(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 1;
}

function isOptionalString(value: unknown): boolean {
  return value === undefined || typeof value === "string";
}

function isTime(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0;
}
