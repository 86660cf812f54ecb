/**
 * One error hierarchy for the whole library. Every error carries a stable `code`, says whether
 * retrying could help, keeps the native error as `cause`, and never contains credentials.
 */

/** Stable machine-readable codes of every error the library throws. */
export type JobsErrorCode =
  | "non-retryable"
  | "job-validation"
  | "invalid-options"
  | "unknown-job"
  | "unknown-queue"
  | "envelope-decode"
  | "payload-too-large"
  | "job-timeout"
  | "broker-closed"
  | "broker-connection"
  | "enqueue-outcome-unknown"
  | "lease-lost"
  | "bulk-enqueue"
  | "unsupported"
  | "store-closed"
  | "store-connection"
  | "job-failed"
  | "job-not-found"
  | "job-cancelled"
  | "wait-timeout"
  | "signature"
  | "decrypt";

const brand: unique symbol = Symbol.for("@jobs/core/JobsError");

/** Options every library error accepts. */
export interface JobsErrorOptions {
  /** The underlying error, typically the broker client's own. */
  cause?: unknown;
  /** Whether retrying the same operation could succeed. */
  retryable?: boolean;
}

/** Base class of every error thrown by `@jobs/*`. Check with `JobsError.isInstance(e)`. */
export class JobsError extends Error {
  /** Stable machine-readable code. */
  readonly code: JobsErrorCode;
  /** Whether retrying the same operation (or job) could succeed. */
  readonly retryable: boolean;

  constructor(code: JobsErrorCode, message: string, options: JobsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }

  /** True for any `JobsError`, even one created by another copy of the library. */
  static isInstance(error: unknown): error is JobsError {
    return typeof error === "object" && error !== null && (error as Record<symbol, unknown>)[brand] === true;
  }
}

// The brand lives on the prototype so that checks work across duplicate installs of the library.
Object.defineProperty(JobsError.prototype, brand, { value: true });

/** Thrown by a handler to dead-letter its job at once, without further attempts. */
export class NonRetryableError extends JobsError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("non-retryable", message, { ...options, retryable: false });
  }
}

/** One problem found by a schema or by the JSON check of a payload. */
export interface ValidationIssue {
  /** Human-readable description. */
  readonly message: string;
  /** Where in the payload, as property keys and indexes. */
  readonly path: readonly (string | number)[];
}

/** A payload failed its job's schema, or is not plain JSON. Nothing was sent. */
export class JobValidationError extends JobsError {
  /** Each problem found. */
  readonly issues: readonly ValidationIssue[];
  constructor(message: string, issues: readonly ValidationIssue[], options: { cause?: unknown } = {}) {
    super("job-validation", message, options);
    this.issues = issues;
  }
}

/** An option (of a factory, a job definition or an enqueue call) is invalid. Names the field. */
export class InvalidOptionsError extends JobsError {
  /** Dotted path of the offending option. */
  readonly field: string;
  constructor(field: string, message: string, options: { cause?: unknown } = {}) {
    super("invalid-options", `[jobs] invalid option "${field}": ${message}`, options);
    this.field = field;
  }
}

/**
 * A signing or encryption key given to the codec is unusable: a key id that is not a short name,
 * a key of the wrong length or not base64, or a `current` id naming no key. Thrown at construction;
 * the message names the key id, never the key.
 */
export class CodecKeyError extends InvalidOptionsError {}

/** A message's signature is missing (with signatures required), names an unknown key, or does not match. */
export class SignatureError extends JobsError {
  constructor(message: string) {
    super("signature", `[jobs] ${message}`);
  }
}

/** An encrypted payload cannot be decrypted: unknown key id, wrong key, tampered bytes, or no key given. */
export class DecryptError extends JobsError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("decrypt", `[jobs] ${message}`, options);
  }
}

/** A message names a job no handler is registered for. */
export class UnknownJobError extends JobsError {
  /** The job name as received (truncated). */
  readonly jobName: string;
  constructor(jobName: string) {
    const shown = jobName.length > 128 ? `${jobName.slice(0, 128)}…` : jobName;
    super("unknown-job", `[jobs] no handler registered for job "${shown}"`);
    this.jobName = shown;
  }
}

/** The broker does not know the queue (and was told not to create it). Nothing was stored. */
export class UnknownQueueError extends JobsError {
  /** The queue name. */
  readonly queue: string;
  constructor(queue: string, message?: string, options: { cause?: unknown } = {}) {
    super("unknown-queue", message ?? `[jobs] queue "${queue}" does not exist`, options);
    this.queue = queue;
  }
}

/** Bytes received from a broker are not a valid envelope. The message is dead-lettered. */
export class EnvelopeDecodeError extends JobsError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("envelope-decode", `[jobs] cannot decode envelope: ${message}`, options);
  }
}

/** An encoded job exceeds the broker's (or the configured) size limit. Nothing was sent. */
export class PayloadTooLargeError extends JobsError {
  /** Encoded size in bytes. */
  readonly size: number;
  /** The limit in bytes. */
  readonly limit: number;
  constructor(size: number, limit: number, where = "encoded job") {
    super("payload-too-large", `[jobs] ${where} is ${size} bytes, over the limit of ${limit} bytes`);
    this.size = size;
    this.limit = limit;
  }
}

/** A handler ran past its job's timeout. Retryable. */
export class JobTimeoutError extends JobsError {
  /** The timeout in milliseconds. */
  readonly timeoutMs: number;
  /** `message` says more than the default (a handler that ran synchronously past its timeout, say). */
  constructor(timeoutMs: number, message = `[jobs] job timed out after ${timeoutMs} ms`) {
    super("job-timeout", message, { retryable: true });
    this.timeoutMs = timeoutMs;
  }
}

/** An operation was called on a closed broker, client or worker. */
export class BrokerClosedError extends JobsError {
  constructor(message = "[jobs] broker is closed") {
    super("broker-closed", message);
  }
}

/**
 * The broker could not be reached or refused the connection. Retryable, except when the broker
 * refused the credentials or the authorization (`retryable: false`: the same call fails the same way).
 */
export class BrokerConnectionError extends JobsError {
  constructor(message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super("broker-connection", message, { ...options, retryable: options.retryable ?? true });
  }
}

/**
 * The enqueue may or may not have been stored (timeout or connection loss after bytes left the
 * process). Re-enqueue with the same id on a broker with dedupe to stay exactly-once.
 */
export class EnqueueOutcomeUnknownError extends JobsError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("enqueue-outcome-unknown", message, { ...options, retryable: true });
  }
}

/** A delivery's lease expired (or its broker connection closed); settling it is no longer possible. */
export class LeaseLostError extends JobsError {
  constructor(message = "[jobs] the delivery's lease was lost; it will be redelivered") {
    super("lease-lost", message);
  }
}

/** The broker cannot do what an option asks (e.g. dedupe on a broker without it). */
export class UnsupportedError extends JobsError {
  constructor(message: string) {
    super("unsupported", message);
  }
}

/** An operation was called on a closed job store. */
export class StoreClosedError extends JobsError {
  constructor(message = "[jobs] job store is closed") {
    super("store-closed", message);
  }
}

/**
 * The job store could not be reached or refused the connection. Retryable, except when it refused
 * the credentials (`retryable: false`). A worker takes no new job while its store is unreachable.
 */
export class StoreConnectionError extends JobsError {
  constructor(message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super("store-connection", message, { ...options, retryable: options.retryable ?? true });
  }
}

/** `result()` of a job that ended without a result: `dead`, `cancelled` or `discarded` (`status`), with its last error. */
export class JobFailedError extends JobsError {
  /** How the job ended. */
  readonly status: "dead" | "cancelled" | "discarded";
  /** The last failure, when there was one. */
  readonly error: SerializedError | undefined;
  constructor(message: string, status: "dead" | "cancelled" | "discarded", error?: SerializedError) {
    super("job-failed", message);
    this.status = status;
    this.error = error;
  }
}

/** `result()` of an id the store has no record of (never enqueued with this store, or pruned). Rejects at once: there is nothing to wait for. */
export class JobNotFoundError extends JobsError {
  /** The id asked for. */
  readonly id: string;
  constructor(id: string) {
    super("job-not-found", `[jobs] job ${id} has no record (unknown id, or pruned)`);
    this.id = id;
  }
}

/** The reason a cancelled job's signal aborts with (`client.cancel`). A handler that lets it escape ends `cancelled`, not retried. */
export class JobCancelledError extends JobsError {
  constructor(message: string) {
    super("job-cancelled", message);
  }
}

/** A wait (`result({ timeout })`) ran out before the job finished; the job itself goes on. */
export class WaitTimeoutError extends JobsError {
  constructor(message: string) {
    super("wait-timeout", message, { retryable: true });
  }
}

/** Per-item result of a bulk enqueue. */
export type BulkItemOutcome =
  | { readonly status: "accepted"; readonly id: string; readonly duplicate: boolean }
  | { readonly status: "rejected"; readonly error: JobsError }
  | { readonly status: "not-sent" };

/** Some items of a bulk enqueue were rejected; `outcomes` tells each item's fate, in order. */
export class BulkEnqueueError extends JobsError {
  /** One outcome per item, in the order given. */
  readonly outcomes: readonly BulkItemOutcome[];
  constructor(message: string, outcomes: readonly BulkItemOutcome[]) {
    super("bulk-enqueue", message);
    this.outcomes = outcomes;
  }
}

/** Plain-data form of an error, as stored in envelopes and dead letters. Never revived into a class. */
export interface SerializedError {
  /** The error's name (class name for Error subclasses). */
  readonly name: string;
  /** The message, truncated. */
  readonly message: string;
  /** The `code` of a `JobsError`, when there is one. */
  readonly code?: string;
  /** The stack, truncated, when there is one. */
  readonly stack?: string;
}

const MAX_MESSAGE = 2_000;
const MAX_STACK = 4_000;

/** Turns anything thrown into plain data, bounded in size and with credentials redacted. */
export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const out: { name: string; message: string; code?: string; stack?: string } = {
      name: String(error.name).slice(0, 128),
      message: redactBounded(String(error.message), MAX_MESSAGE),
    };
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string") out.code = code.slice(0, 64);
    if (typeof error.stack === "string") out.stack = redactBounded(error.stack, MAX_STACK);
    return out;
  }
  let message: string;
  try {
    message = typeof error === "string" ? error : (JSON.stringify(error) ?? String(error));
  } catch {
    message = String(error);
  }
  return { name: "NonError", message: redactBounded(message, MAX_MESSAGE) };
}

// The lookbehind starts a scheme only at the beginning of a word: without it a long run of letters
// (a base64 blob in a message) costs quadratic time.
// The userinfo runs to the last "@" of the authority: an unencoded "@" inside a password is invalid
// in a URL, but people write it, and everything before the last "@" is then secret.
const URL_CREDENTIALS = /(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*:\/\/)([^/\s?#]*)@/gi;
const SECRET_NAMES =
  "password|passwd|pass|token|secret|access_?key|secret_?access_?key|api[_-]?key|x-api-key|auth[_-]?token|x-auth-token|access[_-]?token|client[_-]?secret|authorization|proxy-authorization";
const SECRET_PARAMS = new RegExp(`([?&](?:${SECRET_NAMES})=)[^&\\s]*`, "gi");
// JSON-ish `"password": "…"` and `password: '…'` as printed by inspect() of option objects.
const SECRET_FIELDS = new RegExp(`((?:"|'|\\b)(?:${SECRET_NAMES})(?:"|')?\\s*[:=]\\s*)("(?:[^"\\\\]|\\\\.)*"|'(?:[^'\\\\]|\\\\.)*')`, "gi");
// Unquoted `apiKey=…` (a key=value connection string, a log line) and header lines such as
// `x-api-key: …` and `Authorization: Bearer …`; the lookbehind keeps `bypass=` and `x-passport:` out.
const SECRET_ASSIGNMENTS = new RegExp(`(?<![a-z0-9_-])((?:${SECRET_NAMES})\\s*=\\s*)(?!["'*])[^\\s&,;"']+`, "gi");
const SECRET_HEADERS =
  /(?<![a-z0-9_-])((?:authorization|proxy-authorization|x-api-key|api-key|x-auth-token)\s*:\s*)(?:(bearer|basic|digest|token|apikey)\s+)?(?!["'*])[^\s,;"']+/gi;
// A bearer token anywhere (`curl -H "Bearer …"`); a token is at least 8 characters, so prose ("the bearer of") stays.
const BEARER = /(?<![a-z0-9_-])(bearer\s+)[a-z0-9\-._~+/]{8,}=*/gi;
// The Redis AUTH command line (`AUTH <pw>`, `AUTH <user> <pw>`, also inside `HELLO 3 AUTH … SETNAME …`),
// as the tools that print commands write it: upper case, one or two words, then the end of the line,
// a closing quote or bracket, or SETNAME. Prose ("AUTH failed for …") and Redis's own "<password>"
// placeholder stay. Both words go, since one cannot tell a user from a password.
const AUTH_COMMAND =
  /(?<![A-Za-z0-9_-])(AUTH)([ \t]+)(?![<*])[^\s"'\],;)]+(?:([ \t]+)(?![<*])[^\s"'\],;)]+)?(?=[ \t]*(?:$|[\r\n"'\],;)])|[ \t]+SETNAME\b)/gm;
// The same command quoted, as `redis-cli MONITOR` and clients' debug output print it: "auth" "user" "pw".
const AUTH_QUOTED = /(["'])(auth)\1((?:\s*,?\s*(["'])(?:(?!\4)[^\\]|\\.)*\4){1,2})/gi;

/** How far past a cut `redactBounded` reads, so a credential that straddles the cut is still recognised whole. */
const REDACT_MARGIN = 1_024;

/** Removes credentials from URLs, secret-looking parameters, fields and headers, bearer tokens and Redis AUTH commands in a string. */
export function redact(text: string): string {
  return text
    .replace(URL_CREDENTIALS, (_match, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(":");
      // A user part without a password is often the secret itself (NATS tokens); so is a user named like its password.
      if (colon < 0 || userinfo.slice(0, colon) === userinfo.slice(colon + 1)) return `${scheme}***@`;
      return `${scheme}${userinfo.slice(0, colon)}:***@`;
    })
    .replace(SECRET_PARAMS, "$1***")
    .replace(SECRET_FIELDS, (_match, name: string, value: string) => `${name}${value[0]}***${value[0]}`)
    .replace(SECRET_HEADERS, (_match, name: string, scheme: string | undefined) => `${name}${scheme === undefined ? "" : `${scheme} `}***`)
    .replace(SECRET_ASSIGNMENTS, "$1***")
    .replace(BEARER, "$1***")
    .replace(AUTH_COMMAND, (_match, auth: string, gap: string, gap2: string | undefined) =>
      gap2 === undefined ? `${auth}${gap}***` : `${auth}${gap}***${gap2}***`,
    )
    .replace(
      AUTH_QUOTED,
      (_match, quote: string, auth: string, args: string) =>
        `${quote}${auth}${quote}${args.replace(/(["'])(?:(?!\1)[^\\]|\\.)*\1/g, (_m, q: string) => `${q}***${q}`)}`,
    );
}

// What may be cut in half at the end of a window: a URL's authority before its "@", a quoted
// secret without its closing quote. Either is secret up to the cut.
const CUT_AUTHORITY = /(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*:\/\/)[^/\s?#]*$/i;
const CUT_FIELD = new RegExp(
  `((?:"|'|\\b)(?:${SECRET_NAMES})(?:"|')?\\s*[:=]\\s*)("(?:[^"\\\\]|\\\\.)*\\\\?|'(?:[^'\\\\]|\\\\.)*\\\\?)$`,
  "i",
);

/**
 * `redact(text)` cut to `max` characters, in time bounded by `max` whatever the length of `text`:
 * only the first `max` + 1 KiB are read (redacting a 5 MB message whole took 1.6 s), and a
 * credential cut at the end of what was read is removed whole.
 */
export function redactBounded(text: string, max: number): string {
  if (text.length <= max + REDACT_MARGIN) return redact(text).slice(0, max);
  const window = text
    .slice(0, max + REDACT_MARGIN)
    .replace(CUT_AUTHORITY, "$1***")
    .replace(CUT_FIELD, (_match, name: string, value: string) => `${name}${value[0]}***`);
  return redact(window).slice(0, max);
}
