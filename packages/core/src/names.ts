import { InvalidOptionsError } from "./errors.js";

/** Valid job names (checked at defineJob and again on receipt). */
export const JOB_NAME: RegExp = /^[A-Za-z][A-Za-z0-9_.:-]{0,127}$/;
const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
/** Valid job ids (caller-chosen ones at enqueue, every one on receipt). */
export const JOB_ID: RegExp = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/**
 * Validates a job name: a letter, then up to 127 letters, digits, `_ . : -`. Names only travel
 * inside envelopes and are looked up in a Map, so `__proto__` and friends are merely unknown.
 */
export function assertJobName(name: unknown, field = "name"): asserts name is string {
  if (typeof name !== "string" || !JOB_NAME.test(name)) {
    throw new InvalidOptionsError(
      field,
      `job names start with a letter and contain only letters, digits, "_", ".", ":" and "-" (max 128), got ${JSON.stringify(name)}`,
    );
  }
}

/**
 * Validates a queue name: a letter or digit, then up to 62 letters, digits, `_` and `-`, with no
 * `__` (reserved for physical queues core derives, e.g. per priority). These names are safe as
 * Redis key parts, RabbitMQ queue names, SQS queue names and NATS subject tokens alike.
 */
export function assertQueueName(name: unknown, field = "queue"): asserts name is string {
  if (typeof name !== "string" || !QUEUE_NAME.test(name) || name.includes("__")) {
    throw new InvalidOptionsError(
      field,
      `queue names are 1-63 letters, digits, "_" or "-", start with a letter or digit and contain no "__", got ${JSON.stringify(name)}`,
    );
  }
}

/** Validates a caller-chosen job id: up to 128 letters, digits, `_ . : -`. */
export function assertJobId(id: unknown, field = "id"): asserts id is string {
  if (typeof id !== "string" || !JOB_ID.test(id)) {
    throw new InvalidOptionsError(
      field,
      `job ids are 1-128 letters, digits, "_", ".", ":" or "-", starting with a letter or digit, got ${JSON.stringify(id)}`,
    );
  }
}
