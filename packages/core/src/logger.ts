/**
 * Where warnings and errors go. Events (`on("error")`, `on("config-warning")`, …) stay the way to
 * react to them; this is the way to be told. One `Reporter` per client, worker, admin or broker
 * decides, per entry: the given logger, else `console` once per code when nobody listens, else
 * nothing (`logger: false`).
 */
import { InvalidOptionsError, redact, type SerializedError } from "./errors.js";

/** The job an entry is about: identifiers only, never the payload or metadata. */
export interface LoggedJob {
  /** Job id. */
  readonly id: string;
  /** Job name. */
  readonly name: string;
  /** Logical queue. */
  readonly queue: string;
  /** Attempt, from 1. */
  readonly attempt: number;
}

/** The structured part of an entry (the first argument of every logger call). */
export interface LogFields {
  /** Stable code, e.g. `JOBS_REDIS_EVICTION` (listed in docs/concepts/logging.md). */
  readonly code: string;
  /** Who reports it: `"worker"`, or the adapter's name (`"redis"`) for a broker's entries. */
  readonly source: string;
  /** The error, serialized and redacted (pino's conventional key, so its serializers leave it alone). */
  readonly err?: SerializedError;
  /** The job concerned, when there is one. */
  readonly job?: LoggedJob;
}

/**
 * What the library needs of a logger: the subset pino (and bunyan) and `console` share. Calls are
 * `logger.warn(fields, message)`, object first: pino reads a leading object as the entry's fields and the string as its `msg`,
 * whereas `logger.warn(message, fields)` would make pino treat `fields` as a printf argument and
 * drop it. `console.warn(fields, message)` prints both (the object inspected, then the text), so
 * `logger: console` works as it is. `info` and `debug` are optional: entries of those levels are
 * skipped by a logger without them.
 */
export interface Logger {
  /** Something failed (the library recovered, but an operator should look). */
  error(fields: LogFields, message: string): void;
  /** A guarantee is weaker than it should be, or something was retried. */
  warn(fields: LogFields, message: string): void;
  /** Routine news (a reconnection). */
  info?(fields: LogFields, message: string): void;
  /** Detail for debugging. */
  debug?(fields: LogFields, message: string): void;
}

/**
 * The `logger` option: a `Logger` receives every entry; `undefined` (the default) prints warnings
 * and errors nobody listens to on `console`, once per code; `false` prints nothing.
 */
export type LoggerOption = Logger | false | undefined;

/** Levels of entries. Only `warn` and `error` ever reach the console by default. */
export type LogLevel = "error" | "warn" | "info" | "debug";

/** One thing to report. */
export interface LogEntry {
  /** Level. */
  readonly level: LogLevel;
  /** Stable code. */
  readonly code: string;
  /** Human text, already redacted, starting with `[jobs]`. */
  readonly message: string;
  /** The error, serialized. */
  readonly err?: SerializedError;
  /** The job concerned. */
  readonly job?: LoggedJob;
}

/** Throws `InvalidOptionsError` unless `value` is a valid `logger` option. */
export function assertLogger(value: unknown, field = "logger"): asserts value is LoggerOption {
  if (value === undefined || value === false) return;
  const l = value as Partial<Logger> | null;
  if (typeof l !== "object" || l === null || typeof l.warn !== "function" || typeof l.error !== "function") {
    throw new InvalidOptionsError(field, "expected a logger with warn() and error() (pino, console, …), or false");
  }
}

/**
 * Routes entries of one instance (a client, worker, admin or broker). With a logger: every entry,
 * heard or not. Without: `warn`/`error` entries nobody listened to go to `console.warn` /
 * `console.error`, once per code, so a misconfiguration is seen without flooding a log. With
 * `false`: nothing.
 */
export class Reporter {
  readonly #printed = new Set<string>();

  constructor(
    /** The option as given. */
    readonly logger: LoggerOption,
    /** `"worker"` or the adapter's name. */
    readonly source: string,
  ) {
    assertLogger(logger);
  }

  /** Report `entry`; `heard` says whether a listener received the event it came from. */
  report(entry: LogEntry, heard: boolean): void {
    const logger = this.logger;
    if (logger === false) return;
    if (logger === undefined && (heard || (entry.level !== "warn" && entry.level !== "error") || this.#printed.has(entry.code))) return;
    // Messages are written redacted; this is the second line of defence before anything leaves.
    const message = redact(entry.message);
    if (logger !== undefined) {
      const fields: LogFields = {
        code: entry.code,
        source: this.source,
        ...(entry.err && { err: redactedError(entry.err) }),
        ...(entry.job && { job: entry.job }),
      };
      try {
        logger[entry.level]?.(fields, message);
      } catch {
        // A logger that throws must not break the broker or the worker that reported.
      }
      return;
    }
    this.#printed.add(entry.code);
    // Like Node's own warnings: the code in brackets, shown once. console rather than
    // process.emitWarning: errors are not warnings, `--no-warnings` must not hide them, and
    // console is what Bun, Deno and test runners capture the same way.
    const text = `${message} [${entry.code}] (shown once; pass a logger, listen to the event, or set logger: false)`;
    if (entry.level === "error") console.error(text);
    else console.warn(text);
  }
}

/** A serialized error redacted again (an adapter may have built one by hand). */
function redactedError(err: SerializedError): SerializedError {
  return { ...err, message: redact(err.message), ...(err.stack !== undefined && { stack: redact(err.stack) }) };
}

/** How an emitter turns some of its events into entries: one builder per reported event. */
export type EventEntries<M> = { readonly [E in keyof M]?: (data: M[E], source: string) => LogEntry };

/** Identifiers of a job for an entry, from anything shaped like `JobInfo`. */
export function loggedJob(job: LoggedJob): LoggedJob {
  return { id: job.id, name: job.name, queue: job.queue, attempt: job.attempt };
}

/** `message` with `[jobs] [<source>] ` in front unless it already starts with `[jobs]`. */
export function prefixed(source: string, message: string): string {
  return message.startsWith("[jobs]") ? message : `[jobs] [${source}] ${message}`;
}
