import type { StandardSchemaV1 } from "@standard-schema/spec";
import { type Backoff, type BackoffFunction, compileBackoff, DEFAULT_BACKOFF } from "./backoff.js";
import { type Duration, parseDuration } from "./duration.js";
import { MAX_ATTEMPTS, MAX_TIMER_MS } from "./envelope.js";
import { InvalidOptionsError } from "./errors.js";
import { assertJobName, assertQueueName } from "./names.js";
import { type Priority, priorityLevel } from "./priority.js";
import { parseRetain, type RetainLimits, type RetainPolicy } from "./retention.js";
import type { FinishedStatus } from "./store.js";

/** Defaults applied by `defineJob`. */
export const JOB_DEFAULTS: {
  readonly queue: "default";
  readonly maxAttempts: 25;
  readonly timeoutMs: 1_800_000;
  readonly priority: "normal";
} = {
  queue: "default",
  maxAttempts: 25,
  timeoutMs: 1_800_000,
  priority: "normal",
};

/** Options of `defineJob`. */
export interface JobOptions<S extends StandardSchemaV1 | undefined = undefined> {
  /** Unique job name: a letter, then letters, digits, `_ . : -` (max 128). */
  readonly name: string;
  /** Queue the job goes to. @default "default" */
  readonly queue?: string;
  /** Any Standard Schema (zod, valibot, arktype…): checked on enqueue and again on receipt. */
  readonly schema?: S;
  /** Attempts before dead-lettering. @default 25 */
  readonly maxAttempts?: number;
  /** Handler timeout: the signal aborts and the attempt fails. @default "30m" */
  readonly timeout?: Duration;
  /** Default priority. @default "normal" */
  readonly priority?: Priority;
  /** Delay before each retry. @default exponential from 1 s, capped at 1 h, with jitter */
  readonly backoff?: Backoff;
  /**
   * How long a job store keeps this job's finished records, per status (overrides the worker's
   * `retain` status by status). @default the worker's, else a day (a week for `dead`)
   */
  readonly retain?: RetainPolicy;
}

declare const payloadTypes: unique symbol;

/** A job definition: import it wherever the job is enqueued or handled. */
export interface JobDefinition<Input = unknown, Output = Input> {
  /** Job name. */
  readonly name: string;
  /** Queue. */
  readonly queue: string;
  /** Payload schema, if any. */
  readonly schema: StandardSchemaV1<Input, Output> | undefined;
  /** Attempts before dead-lettering. */
  readonly maxAttempts: number;
  /** Handler timeout in ms. */
  readonly timeoutMs: number;
  /** Default priority. */
  readonly priority: Priority;
  /** Delay before retry `attempt`. */
  readonly backoff: BackoffFunction;
  /** Retention of its finished records, per status given (parsed `retain`). */
  readonly retain?: Partial<Record<FinishedStatus, RetainLimits>> | undefined;
  /** Type-level only: the payload types. */
  readonly [payloadTypes]?: { readonly input: Input; readonly output: Output };
}

/** The payload type a producer passes for a job definition. */
export type PayloadOf<J> = J extends JobDefinition<infer I, unknown> ? I : never;
/** The payload type a handler receives for a job definition (after the schema's transforms). */
export type HandlerPayloadOf<J> = J extends JobDefinition<unknown, infer O> ? O : never;

/**
 * Defines a job. The payload type comes from `schema` (any Standard Schema), or from the type
 * parameter when there is no schema: `defineJob<{ to: string }>({ name: "email.send" })`.
 * Throws `InvalidOptionsError` naming the field for any bad option.
 */
export function defineJob<S extends StandardSchemaV1>(
  options: JobOptions<S> & { readonly schema: S },
): JobDefinition<StandardSchemaV1.InferInput<S>, StandardSchemaV1.InferOutput<S>>;
export function defineJob<P = unknown>(options: JobOptions<undefined>): JobDefinition<P, P>;
export function defineJob(options: JobOptions<StandardSchemaV1 | undefined>): JobDefinition<unknown, unknown> {
  if (typeof options !== "object" || options === null) {
    throw new InvalidOptionsError("options", "defineJob expects an options object");
  }
  assertJobName(options.name, "name");
  const queue = options.queue ?? JOB_DEFAULTS.queue;
  assertQueueName(queue, "queue");
  const schema = options.schema;
  // A Standard Schema may be a function (arktype's types are callable); what counts is its validate.
  if (schema !== undefined && typeof (schema as Partial<StandardSchemaV1> | null)?.["~standard"]?.validate !== "function") {
    throw new InvalidOptionsError("schema", "expected a Standard Schema (zod, valibot, arktype, …)");
  }
  const maxAttempts = options.maxAttempts ?? JOB_DEFAULTS.maxAttempts;
  assertMaxAttempts(maxAttempts, "maxAttempts");
  const timeoutMs = options.timeout === undefined ? JOB_DEFAULTS.timeoutMs : assertTimeout(options.timeout, "timeout");
  const priority = options.priority ?? JOB_DEFAULTS.priority;
  priorityLevel(priority, "priority");
  const backoff = compileBackoff(options.backoff ?? DEFAULT_BACKOFF, "backoff");
  const retain = parseRetain(options.retain, "retain");
  return Object.freeze({ name: options.name, queue, schema, maxAttempts, timeoutMs, priority, backoff, retain });
}

/** Validates maxAttempts: an integer from 1 to `MAX_ATTEMPTS` (1000), the bound decoding applies too. */
export function assertMaxAttempts(value: unknown, field: string): asserts value is number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_ATTEMPTS) {
    throw new InvalidOptionsError(field, `expected an integer from 1 to ${MAX_ATTEMPTS}, got ${String(value)}`);
  }
}

/** Parses a timeout: a positive duration up to 24 days (the longest Node timer). */
export function assertTimeout(value: Duration, field: string): number {
  const ms = parseDuration(value, field);
  if (ms < 1 || ms > MAX_TIMER_MS) {
    throw new InvalidOptionsError(field, `expected a timeout from 1 ms to 24 days, got ${String(value)}`);
  }
  return Math.ceil(ms);
}
