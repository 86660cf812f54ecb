/** The two errors every adapter throws in the same words, built in one place. */
import { BrokerClosedError, BrokerConnectionError } from "../errors.js";
import { redactedCause, redactedMessage } from "./cause.js";
import { isAuthFailure } from "./connect.js";

/** `[jobs] [<adapter>] broker is closed` (and `; <detail>`): anything asked of a broker after `close()`. */
export function brokerClosedError(adapter: string, detail?: string): BrokerClosedError {
  return new BrokerClosedError(`[jobs] [${adapter}] broker is closed${detail === undefined ? "" : `; ${detail}`}`);
}

/**
 * `[jobs] [<adapter>] <what>: <redacted native message>`, with the redacted native error as `cause`.
 * Non-retryable when the broker refused the credentials or the authorization (`isAuthFailure`).
 */
export function brokerConnectionError(adapter: string, what: string, error: unknown): BrokerConnectionError {
  return new BrokerConnectionError(`[jobs] [${adapter}] ${what}: ${redactedMessage(error)}`, {
    cause: redactedCause(error),
    retryable: !isAuthFailure(error),
  });
}
