/** Turning ioredis errors into safe text: no credentials, no command arguments. */
import { redact } from "@jobs/core/adapter";

/** A copy of a native error that keeps name and (redacted) message only: ioredis errors carry command arguments, AUTH's included. */
export function cleanCause(error: unknown): Error {
  const copy = new Error(redact(String((error as Error)?.message ?? error)));
  copy.name = typeof (error as Error)?.name === "string" ? (error as Error).name : "Error";
  return copy;
}

/** The redacted message of anything thrown. */
export function describe(error: unknown): string {
  return redact(String((error as Error)?.message ?? error));
}

/** True for an error reply of the server (nothing ran), as opposed to a lost connection or a timeout. */
export function isReplyError(error: unknown): boolean {
  return (error as Error)?.name === "ReplyError";
}
