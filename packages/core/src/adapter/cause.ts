/** Native client errors turned into text and causes that are safe to keep, log and show. */
import { redactBounded } from "../errors.js";

/** The longest native message kept, like a serialized error's. */
const MAX_NATIVE_MESSAGE = 2_000;

/**
 * The redacted message of anything thrown (a client error's message may quote a URL with
 * credentials or a command's arguments), cut to 2,000 characters before it is redacted.
 */
export function redactedMessage(error: unknown): string {
  return redactBounded(String((error as Error | null | undefined)?.message ?? error), MAX_NATIVE_MESSAGE);
}

/**
 * A copy of a native error that keeps only its name, its redacted message and a string or numeric
 * `code`: what an adapter passes as the `cause` of the `JobsError` it throws. Client errors carry
 * more than that (command arguments with `AUTH`'s password, signed request headers, option
 * objects), and a cause is logged and serialized with the error.
 */
export function redactedCause(error: unknown): Error {
  const copy = new Error(redactedMessage(error));
  const name = (error as Error | null | undefined)?.name;
  copy.name = typeof name === "string" ? name : "Error";
  const code = (error as { code?: unknown } | null | undefined)?.code;
  if (typeof code === "string" || typeof code === "number") (copy as Error & { code?: unknown }).code = code;
  return copy;
}
