import { BrokerConnectionError, EnqueueOutcomeUnknownError, type JobsError, type SerializedError, UnknownQueueError } from "@jobs/core";
import { LeaseLostError, redact } from "@jobs/core/adapter";

/** The fields of an AWS SDK error we read (never its request, which carries signed headers). */
interface AwsError {
  readonly name?: unknown;
  readonly message?: unknown;
  readonly code?: unknown;
  readonly Code?: unknown;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

/** Thrown by the request wrapper when a request outlived its timeout (the SDK saw an abort). */
export class RequestTimeout extends Error {
  constructor(readonly timeoutMs: number) {
    super(`request timed out after ${timeoutMs} ms`);
    this.name = "RequestTimeout";
  }
}

/** "Name: message", redacted and short: what our messages quote of a native error. */
export function describeError(error: unknown): string {
  const e = (error ?? {}) as AwsError;
  const name = typeof e.name === "string" ? e.name : "Error";
  const message = typeof e.message === "string" ? e.message : String(error);
  return redact(`${name}: ${message}`).slice(0, 300);
}

/** A copy of the native error safe to keep as `cause`: name, code and redacted message only. */
export function safeCause(error: unknown): Error {
  const e = (error ?? {}) as AwsError;
  const copy = new Error(describeError(error));
  copy.name = typeof e.name === "string" ? e.name : "Error";
  const code = e.Code ?? e.code;
  if (typeof code === "string") (copy as Error & { code?: string }).code = code;
  return copy;
}

/** Serialized form for `disconnected` and `error` events. */
export function serialized(error: unknown): SerializedError {
  const cause = safeCause(error);
  return { name: cause.name, message: cause.message };
}

const codeOf = (error: unknown): string => {
  const e = (error ?? {}) as AwsError;
  return `${String(e.name ?? "")} ${String(e.Code ?? "")} ${String(e.code ?? "")}`;
};

/** SQS says the queue does not exist. */
export function isMissingQueue(error: unknown): boolean {
  return /QueueDoesNotExist|NonExistentQueue/.test(codeOf(error));
}

/** The endpoint answered (whatever it said): the connection works. */
export function responded(error: unknown): boolean {
  return typeof (error as AwsError | undefined)?.$metadata?.httpStatusCode === "number" && !(error instanceof RequestTimeout);
}

/** Maps a failed settle, receive or inspection request to a core error. */
export function brokerError(operation: string, queue: string, error: unknown): JobsError {
  if (isMissingQueue(error))
    return new UnknownQueueError(queue, `[jobs] [sqs] queue "${queue}" does not exist`, { cause: safeCause(error) });
  if (/ReceiptHandleIsInvalid|MessageNotInflight|InvalidParameterValue/.test(codeOf(error)) && operation !== "publish")
    return new LeaseLostError();
  return new BrokerConnectionError(`[jobs] [sqs] ${operation} on "${queue}" failed: ${describeError(error)}`, { cause: safeCause(error) });
}

/**
 * Maps a failed SendMessageBatch request (as a whole) to the outcome of each of its messages:
 * definite when SQS answered or the connection was refused, ambiguous when the request may have
 * reached SQS without an answer (timeout, connection lost).
 */
export function publishError(queue: string, error: unknown): JobsError {
  if (isMissingQueue(error)) return brokerError("publish", queue, error);
  const refused = /ECONNREFUSED/.test(codeOf(error)) || /ECONNREFUSED/.test(String((error as AwsError)?.message));
  if (responded(error) || refused) return brokerError("publish", queue, error);
  return new EnqueueOutcomeUnknownError(`[jobs] [sqs] publish to "${queue}" got no answer: ${describeError(error)}`, {
    cause: safeCause(error),
  });
}
