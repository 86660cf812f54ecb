/**
 * The SQS clients, every request's time bound, the `disconnected` / `reconnected` /
 * `insecure-connection` events, and AWS errors mapped to core's.
 */
import { Agent } from "node:http";
import { type QueueAttributeName, SQSClient, type SQSClientConfig } from "@aws-sdk/client-sqs";
import {
  BrokerConnectionError,
  type BrokerEventMap,
  brokerAuthError,
  brokerClosedError,
  type Emitter,
  EnqueueOutcomeUnknownError,
  hasMethods,
  isAuthFailure,
  isLoopbackHost,
  JobsError,
  LeaseLostError,
  RequestTimeoutError,
  redactedCause,
  redactedMessage,
  type SerializedError,
  UnknownQueueError,
  warnInsecureConnection,
} from "@jobs/core/adapter";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { SqsSettings } from "./options.js";

// The deprecated `AttributeNames` is the only spelling local-aws-sqs reads; "All" is valid there and on SQS.
export const RECEIVE_ATTRIBUTES: QueueAttributeName[] = ["All"];

/** What an SDK call gets: the signal that bounds it, and the SDK's own timeout (the same bound). */
export interface CallOptions {
  readonly abortSignal: AbortSignal;
  readonly requestTimeout: number;
}

/** The SQS clients of one broker and the state of its link to the endpoint. */
export class SqsConnection {
  readonly client: SQSClient;
  /**
   * Sends publishes: the same connections, no SDK retry. A retried SendMessageBatch whose first
   * response was lost (connection reset) stores the jobs twice on a standard queue; without the
   * retry the enqueue rejects as ambiguous (`EnqueueOutcomeUnknownError`), which the caller sees
   * and can retry with the same id (docs/errors.md, "Definite and ambiguous enqueue failures").
   */
  readonly publishClient: SQSClient;
  /** Set by the broker's close(): nothing new starts. */
  closed = false;
  /** The endpoint's host (or the region's), for messages. */
  readonly host: string;
  readonly #ownsClient: boolean;
  /** The request handler is the broker's (not one the caller put in `clientConfig.requestHandler`). */
  readonly #ownsHandler: boolean = true;
  readonly #timeoutMs: number;
  readonly #events: Emitter<BrokerEventMap>;
  #down = false;

  constructor(settings: SqsSettings, events: Emitter<BrokerEventMap>) {
    this.#timeoutMs = settings.timeoutMs;
    this.#events = events;
    this.host =
      settings.endpoint !== undefined
        ? hostOf(settings.endpoint)
        : `SQS (region ${settings.region ?? settings.clientConfig?.region?.toString() ?? "from the environment"})`;
    if (settings.client !== undefined) {
      this.client = settings.client;
      this.publishClient = settings.client;
      this.#ownsClient = false;
      return;
    }
    const { endpoint, clientConfig } = settings;
    const region = settings.region ?? clientConfig?.region ?? (endpoint === undefined ? undefined : "us-east-1");
    // A handler of the caller's is kept as it is (and never destroyed): every call is still bounded
    // by its abort signal. Handler options (a plain object) are laid over ours.
    const given: unknown = clientConfig?.requestHandler;
    this.#ownsHandler = !hasMethods(given, ["handle"]);
    const requestHandler = this.#ownsHandler
      ? new NodeHttpHandler({
          connectionTimeout: settings.connectTimeoutMs,
          requestTimeout: settings.timeoutMs,
          // @smithy/node-http-handler only warns when `requestTimeout` passes, unless told to throw.
          throwOnRequestTimeout: true,
          httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }),
          ...(typeof given === "object" && given !== null ? given : {}),
        })
      : given;
    const config = {
      ...clientConfig,
      ...(endpoint === undefined ? {} : { endpoint }),
      ...(region === undefined ? {} : { region }),
      requestHandler,
    } as SQSClientConfig;
    this.client = new SQSClient(config);
    this.publishClient = new SQSClient({ ...config, maxAttempts: 1 });
    this.#ownsClient = true;
    const url = endpoint === undefined ? undefined : new URL(endpoint);
    // Requests are signed, but travel in clear text.
    if (url?.protocol === "http:" && !isLoopbackHost(url.hostname)) {
      warnInsecureConnection(events, "sqs", `endpoint ${url.host} is not on this machine and does not use TLS (http:)`);
    }
  }

  /** Throws `BrokerClosedError` once the broker is closed. */
  ensureOpen(): void {
    if (this.closed) throw brokerClosedError("sqs");
  }

  /**
   * Runs one SDK call bounded by the request timeout (plus `extraMs`, a receive's wait) and an
   * optional signal, for receives that stop: a timed-out call rejects with `RequestTimeoutError`.
   * Tracks connection loss for the events.
   */
  async call<T>(run: (options: CallOptions) => Promise<T>, extraMs = 0, signal?: AbortSignal): Promise<T> {
    const timeoutMs = this.#timeoutMs + extraMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const abortSignal = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
    try {
      const result = await run({ abortSignal, requestTimeout: timeoutMs });
      if (this.#down) {
        this.#down = false;
        this.#events.emit("reconnected", {});
      }
      return result;
    } catch (error) {
      const failure = timeout.aborted || (error as Error)?.name === "TimeoutError" ? new RequestTimeoutError(timeoutMs) : error;
      if (!responded(failure) && !signal?.aborted && !this.#down && !this.closed) {
        this.#down = true;
        this.#events.emit("disconnected", { error: serialized(failure) });
      }
      throw failure;
    }
  }

  /** Destroys the clients the broker built (never the caller's, nor a request handler of the caller's). */
  destroy(): void {
    if (!this.#ownsClient || !this.#ownsHandler) return;
    this.client.destroy();
    this.publishClient.destroy();
  }
}

/** The fields of an AWS SDK error we read (never its request, which carries signed headers). */
interface AwsError {
  readonly name?: unknown;
  readonly message?: unknown;
  readonly code?: unknown;
  readonly Code?: unknown;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

/** "Name: message", redacted and short: what our messages quote of a native error. */
export function describeError(error: unknown): string {
  const e = (error ?? {}) as AwsError;
  const name = typeof e.name === "string" ? e.name : "Error";
  return `${name}: ${redactedMessage(typeof e.message === "string" ? e.message : String(error))}`.slice(0, 300);
}

/** Core's redacted cause, keeping the code an SDK service error carries as `Code` (a socket error: `code`). */
export function awsCause(error: unknown): Error {
  const e = (error ?? {}) as AwsError;
  return redactedCause({ name: e.name, message: typeof e.message === "string" ? e.message : String(error), code: e.Code ?? e.code });
}

/** Serialized form for `disconnected` and `error` events. */
export function serialized(error: unknown): SerializedError {
  return { name: awsCause(error).name, message: describeError(error) };
}

const codeOf = (error: unknown): string => {
  const e = (error ?? {}) as AwsError;
  return `${String(e.name ?? "")} ${String(e.Code ?? "")} ${String(e.code ?? "")}`;
};

/** SQS says the queue does not exist. */
export function isMissingQueue(error: unknown): boolean {
  return /QueueDoesNotExist|NonExistentQueue/.test(codeOf(error));
}

/** A purge already runs on this queue (one per queue per 60 s). */
export function isPurgeInProgress(error: unknown): boolean {
  return /PurgeQueueInProgress/.test(`${(error as Error)?.name} ${String((error as AwsError)?.Code)}`);
}

/** The endpoint answered (whatever it said): the connection works. */
export function responded(error: unknown): boolean {
  return typeof (error as AwsError | undefined)?.$metadata?.httpStatusCode === "number" && !(error instanceof RequestTimeoutError);
}

function hostOf(endpoint: string): string {
  try {
    return new URL(endpoint).host;
  } catch {
    return "the endpoint";
  }
}

/**
 * Maps a failed settle, receive or inspection request to a core error (one already mapped stays
 * as it is). Refused credentials or authorization (InvalidClientTokenId, SignatureDoesNotMatch,
 * AccessDenied, no credentials at all…) are non-retryable.
 */
export function brokerError(operation: string, queue: string, error: unknown, host = "the endpoint"): JobsError {
  if (JobsError.isInstance(error)) return error;
  if (isAuthFailure(error)) return brokerAuthError("sqs", host, `${operation} on "${queue}"`, error);
  if (isMissingQueue(error))
    return new UnknownQueueError(queue, `[jobs] [sqs] queue "${queue}" does not exist`, { cause: awsCause(error) });
  if (/ReceiptHandleIsInvalid|MessageNotInflight|InvalidParameterValue/.test(codeOf(error)) && operation !== "publish")
    return new LeaseLostError();
  return new BrokerConnectionError(`[jobs] [sqs] ${operation} on "${queue}" failed: ${describeError(error)}`, { cause: awsCause(error) });
}

/**
 * Maps a failed SendMessageBatch request (as a whole) to the outcome of each of its messages:
 * definite when SQS answered or the connection was refused, ambiguous when the request may have
 * reached SQS without an answer (timeout, connection lost).
 */
export function publishError(queue: string, error: unknown): JobsError {
  if (isMissingQueue(error)) return brokerError("publish", queue, error);
  // Refused, or a host name that does not resolve: no byte reached SQS.
  const never = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN/;
  const refused = never.test(codeOf(error)) || never.test(String((error as AwsError)?.message));
  if (responded(error) || refused) return brokerError("publish", queue, error);
  return new EnqueueOutcomeUnknownError(`[jobs] [sqs] publish to "${queue}" got no answer: ${describeError(error)}`, {
    cause: awsCause(error),
  });
}
