/**
 * What every adapter does the same way when its first connection cannot be made: tell a refused
 * login from an unreachable broker, and bound each call made before the first connection by the
 * connect timeout, so that a wrong URL or wrong credentials fail the call definitely (nothing was
 * sent) instead of hanging or being reported as "may or may not be stored".
 */
import type { BrokerEventMap } from "../broker.js";
import { BrokerConnectionError, JobsError, redact, serializeError } from "../errors.js";
import type { Emitter } from "../events.js";
import { redactedCause, redactedMessage } from "./cause.js";

/** The default `connectTimeout` of every adapter, in ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

// What each broker (and its client) says when it refuses a login or an authorization:
// Redis WRONGPASS / NOAUTH / NOPERM, RabbitMQ ACCESS_REFUSED (403), NATS "Authorization Violation"
// (AuthorizationError, UserAuthenticationExpiredError), AWS InvalidClientTokenId,
// SignatureDoesNotMatch, UnrecognizedClientException, AccessDenied(Exception), ExpiredToken, the
// SDK's CredentialsProviderError (no credentials at all), and PostgreSQL's SQLSTATE 28P01
// (invalid_password) and 28000 (invalid_authorization_specification: no pg_hba.conf entry).
const AUTH_NAMES =
  /^(AuthorizationError|UserAuthenticationExpiredError|CredentialsProviderError|InvalidClientTokenId|SignatureDoesNotMatch|UnrecognizedClientException|AccessDenied|AccessDeniedException|ExpiredToken|ExpiredTokenException|InvalidAccessKeyId|MissingAuthenticationToken|28P01|28000)$/;
const AUTH_MESSAGES =
  /\b(WRONGPASS|NOAUTH|NOPERM|ACCESS[-_]REFUSED|Authorization Violation|Authentication (?:Timeout|Expired)|invalid username-password pair|invalid password|user authentication expired|password authentication failed)\b/i;

/** True when `error` says the broker refused the credentials or the authorization, as opposed to being unreachable. */
export function isAuthFailure(error: unknown): boolean {
  if (error === null || error === undefined) return false;
  const e = error as { name?: unknown; code?: unknown; Code?: unknown; message?: unknown };
  for (const field of [e.name, e.code, e.Code]) if (typeof field === "string" && AUTH_NAMES.test(field)) return true;
  if (e.code === 403) return true; // amqplib's ACCESS_REFUSED
  return AUTH_MESSAGES.test(String(typeof e.message === "string" ? e.message : error));
}

/**
 * `[jobs] [<adapter>] <host> refused the credentials or authorization (<what>): <redacted native
 * message>`: a non-retryable `BrokerConnectionError` (the same call fails the same way until the
 * credentials or permissions change).
 */
export function brokerAuthError(adapter: string, host: string, what: string, error: unknown): BrokerConnectionError {
  return new BrokerConnectionError(
    `[jobs] [${adapter}] ${redact(host)} refused the credentials or authorization (${what}): ${redactedMessage(error)}`,
    { cause: redactedCause(error), retryable: false },
  );
}

/**
 * The error of a call made before the first connection, once the connect timeout has passed:
 * `[jobs] [<adapter>] cannot connect to <host> within <ms> ms (nothing was sent): <last error>`.
 * A refused login gives `brokerAuthError` instead. Retryable: the broker may be starting.
 */
export function notConnectedError(adapter: string, host: string, timeoutMs: number, lastError: unknown): BrokerConnectionError {
  if (lastError !== undefined && isAuthFailure(lastError)) return brokerAuthError(adapter, host, "connect", lastError);
  if (JobsError.isInstance(lastError) && lastError.code === "broker-connection") return lastError as BrokerConnectionError;
  const why = lastError === undefined ? "" : `: ${redactedMessage(lastError)}`;
  return new BrokerConnectionError(
    `[jobs] [${adapter}] cannot connect to ${redact(host)} within ${timeoutMs} ms (nothing was sent)${why}`,
    {
      cause: lastError === undefined ? undefined : redactedCause(lastError),
    },
  );
}

/**
 * The first connection of a broker, as the calls made before it see it. The adapter keeps
 * connecting in the background (a broker that is restarting comes back) and reports here:
 * `connected()` once up, `failed(error)` after each attempt that failed. `wait()` resolves at once
 * when connected; otherwise it waits at most the connect timeout and rejects with a definite
 * `BrokerConnectionError` naming the host and the last failure, or at once, non-retryable, when
 * the broker refused the credentials. Given the broker's events, it reports a broker never reached
 * as every adapter reports a lost one: `disconnected` (with the first failure) once, and
 * `reconnected` when the first connection is made after it.
 */
export class FirstConnection {
  readonly #adapter: string;
  readonly #host: string;
  readonly #timeoutMs: number;
  readonly #events: Emitter<BrokerEventMap> | undefined;
  #reported = false;
  #connected = false;
  #lastError: unknown;
  #aborted: { readonly error: unknown } | undefined;
  #waiters = new Set<{ resolve(): void; reject(error: Error): void }>();

  constructor(adapter: string, host: string, timeoutMs: number, events?: Emitter<BrokerEventMap>) {
    this.#adapter = adapter;
    this.#host = host;
    this.#timeoutMs = timeoutMs;
    this.#events = events;
  }

  /** The first connection was made (later drops are the adapter's reconnect business). */
  get connected(): boolean {
    return this.#connected;
  }

  /** The last failure of a connect attempt, if any. */
  get lastError(): unknown {
    return this.#lastError;
  }

  /** Marks the connection made: every waiting call goes on. */
  connectedNow(): void {
    if (this.#connected) return;
    this.#connected = true;
    if (this.#reported) this.#events?.emit("reconnected", {});
    this.#lastError = undefined;
    for (const w of this.#waiters) w.resolve();
    this.#waiters.clear();
  }

  /** Records a failed attempt; a refused login fails every waiting call at once. */
  failed(error: unknown): void {
    if (this.#connected) return;
    this.#lastError = error;
    if (!this.#reported && this.#aborted === undefined && this.#events !== undefined) {
      this.#reported = true;
      this.#events.emit("disconnected", { error: serializeError(redactedCause(error)) });
    }
    if (!isAuthFailure(error)) return;
    const failure = brokerAuthError(this.#adapter, this.#host, "connect", error);
    for (const w of this.#waiters) w.reject(failure);
    this.#waiters.clear();
  }

  /** Fails every waiting call, and every later one, with `error` (the broker was closed, or gave up connecting). */
  abort(error: unknown): void {
    this.#aborted = { error };
    for (const w of this.#waiters) w.reject(error as Error);
    this.#waiters.clear();
  }

  /** Resolves once connected; rejects after the connect timeout, or at once on a refused login seen before. */
  wait(): Promise<void> {
    if (this.#connected) return Promise.resolve();
    if (this.#aborted !== undefined) return Promise.reject(this.#aborted.error);
    if (this.#lastError !== undefined && isAuthFailure(this.#lastError)) {
      return Promise.reject(brokerAuthError(this.#adapter, this.#host, "connect", this.#lastError));
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(notConnectedError(this.#adapter, this.#host, this.#timeoutMs, this.#lastError));
      }, this.#timeoutMs);
      this.#waiters.add(waiter);
    });
  }
}
