/** Small helpers shared by the broker and its consumers: time bounds and error wrapping. */
import { BrokerConnectionError, JobsError, type SerializedError } from "@jobs/core";
import { redact } from "@jobs/core/adapter";

/** Rejects with a `BrokerConnectionError` if `promise` takes longer than `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new BrokerConnectionError(`[jobs] [rabbitmq] ${what}: no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** A `JobsError` as it is; anything else (amqplib's channel and socket errors) as a redacted `BrokerConnectionError`. */
export function wrap(error: unknown): Error {
  if (JobsError.isInstance(error)) return error;
  const message = redact(String((error as Error)?.message ?? error));
  return new BrokerConnectionError(`[jobs] [rabbitmq] ${message}`, { cause: new Error(message) });
}

/** A copy of a native error with nothing but its redacted message, name and code (client errors may carry connection details). */
export function sanitized(error: unknown): Error | undefined {
  if (error === undefined) return undefined;
  const copy = new Error(redact(String((error as Error)?.message ?? error)));
  copy.name = String((error as Error)?.name ?? "Error");
  const code = (error as { code?: unknown })?.code;
  if (typeof code === "string" || typeof code === "number") (copy as Error & { code?: unknown }).code = code;
  return copy;
}

/** An error as event data, redacted. */
export function serialize(error: unknown): SerializedError {
  const e = sanitized(error) as Error;
  return { name: e.name, message: `[jobs] [rabbitmq] ${e.message}` };
}
