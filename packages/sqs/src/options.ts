/** The options of `createSqsBroker`, and their validation. */
import type { SQSClient, SQSClientConfig } from "@aws-sdk/client-sqs";
import {
  assertClientShape,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type Duration,
  InvalidOptionsError,
  type LoggerOption,
  type OutgoingMessage,
  parseDuration,
  renamedOption,
} from "@jobs/core/adapter";
import { sqsCapabilities } from "./capabilities.js";
import { assertPrefix } from "./names.js";

/** Options of `createSqsBroker`. */
export interface SqsBrokerOptions {
  /**
   * An existing client to use (never destroyed by the broker); request timeouts still apply per call.
   * Its SDK retries apply to publishes too: give it `maxAttempts: 1`, or a retried send whose first
   * response was lost stores the job twice on a standard queue. Checked by shape (`send`, `destroy`), not by class.
   * @default a client built from the options below
   */
  readonly client?: SQSClient;
  /** Endpoint URL of SQS or a compatible service (LocalStack, ElasticMQ, an emulator). @default the AWS endpoint of the region */
  readonly url?: string;
  /** @deprecated Renamed `url` (same meaning); removed in the next major release. */
  readonly endpoint?: string;
  /** AWS region. @default the SDK's (AWS_REGION, profile), or "us-east-1" when `url` is given */
  readonly region?: string;
  /**
   * More configuration of the client the broker builds (credentials, retries, …); not allowed with `client`. A
   * `requestHandler` of yours is kept: a handler is used as it is (calls are still bounded by `requestTimeout` through
   * their abort signal, but its sockets and connect timeout are yours), handler options are laid over the broker's.
   * @default {}
   */
  readonly clientConfig?: SQSClientConfig;
  /** Prefix of every SQS queue name (up to 40 of `[A-Za-z0-9_-]`). @default "jobs-" */
  readonly prefix?: string;
  /** `"create"`: create missing queues on first use; `"verify"`: only look them up, a missing one is an `UnknownQueueError`. @default "create" */
  readonly queues?: "create" | "verify";
  /** FIFO queues: enqueue dedupe by job id within 5 minutes, but no per-message delay. @default false */
  readonly fifo?: boolean;
  /** FIFO message group of a message: messages of one group run one at a time, in order. @default the job id (no ordering, full parallelism) */
  readonly messageGroupId?: (queue: string, message: OutgoingMessage) => string;
  /** Largest body in bytes; queues are created with this `MaximumMessageSize` (1024–1048576). @default 1048576 */
  readonly maxPayloadBytes?: number;
  /** Long-poll wait of each receive, in seconds (1–20): the idle cost is one request per wait per queue. @default 20 */
  readonly waitTimeSeconds?: number;
  /** Most receive requests in flight per consumer under a backlog (one when idle). @default ceil(prefetch / 10), at most 10 */
  readonly maxReceiveLoops?: number;
  /** How long deletes and visibility changes wait to fill a batch of 10. @default 5 */
  readonly batchLinger?: Duration;
  /** Bound on opening a connection to the endpoint (a wrong host or port fails within it, definitely: nothing was sent); ignored with `client`. @default "10s" */
  readonly connectTimeout?: Duration;
  /** Any request (a receive: beyond its wait) fails after this long; a publish then has an unknown outcome. @default "10s" */
  readonly requestTimeout?: Duration;
  /** `maxReceiveCount` of the RedrivePolicy of created queues: a backstop for crash loops, above core's `maxDeliveries`. @default 50 */
  readonly maxReceiveCount?: number;
  /** Read `ApproximateNumberOfMessages` as including in-flight messages, as local-aws-sqs reports it (SQS does not). @default false */
  readonly countsIncludeInFlight?: boolean;
  /** Where this broker's warnings and errors are logged (pino, console, …). `false` logs nothing. @default `console`, once per code, for what no listener hears */
  readonly logger?: LoggerOption;
}

/** The options, checked and with their defaults. */
export interface SqsSettings {
  /** The caller's client, or undefined to build one from `url` (kept here as `endpoint`), `region` and `clientConfig`. */
  readonly client: SQSClient | undefined;
  readonly endpoint: string | undefined;
  readonly region: string | undefined;
  readonly clientConfig: SQSClientConfig | undefined;
  readonly prefix: string;
  /** Create missing queues (`queues: "create"`). */
  readonly create: boolean;
  readonly fifo: boolean;
  readonly groupId: (queue: string, message: OutgoingMessage) => string;
  readonly maxPayloadBytes: number;
  readonly waitSeconds: number;
  readonly maxLoops: number | undefined;
  readonly lingerMs: number;
  readonly connectTimeoutMs: number;
  readonly timeoutMs: number;
  readonly maxReceiveCount: number;
  readonly countsIncludeInFlight: boolean;
}

/** Checks the options (throwing `InvalidOptionsError` naming the field) and applies their defaults. */
export function resolveSqsOptions(options: SqsBrokerOptions): SqsSettings {
  if (typeof options !== "object" || options === null) throw new InvalidOptionsError("options", "expected an options object");
  const prefix = options.prefix ?? "jobs-";
  assertPrefix(prefix);
  const mode = options.queues ?? "create";
  if (mode !== "create" && mode !== "verify") throw new InvalidOptionsError("queues", 'expected "create" or "verify"');
  const fifo = options.fifo ?? false;
  if (typeof fifo !== "boolean") throw new InvalidOptionsError("fifo", "expected a boolean");
  const maxPayloadBytes = options.maxPayloadBytes ?? sqsCapabilities.maxPayloadBytes;
  if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 1024 || maxPayloadBytes > 1_048_576) {
    throw new InvalidOptionsError("maxPayloadBytes", `expected an integer from 1024 to 1048576, got ${String(maxPayloadBytes)}`);
  }
  const waitSeconds = options.waitTimeSeconds ?? 20;
  if (!Number.isInteger(waitSeconds) || waitSeconds < 1 || waitSeconds > 20) {
    throw new InvalidOptionsError("waitTimeSeconds", `expected an integer from 1 to 20, got ${String(waitSeconds)}`);
  }
  const maxLoops = options.maxReceiveLoops;
  if (maxLoops !== undefined && !(Number.isInteger(maxLoops) && maxLoops >= 1)) {
    throw new InvalidOptionsError("maxReceiveLoops", "expected a positive integer");
  }
  const lingerMs = parseDuration(options.batchLinger ?? 5, "batchLinger");
  const timeoutMs = parseDuration(options.requestTimeout ?? "10s", "requestTimeout");
  if (timeoutMs < 100) throw new InvalidOptionsError("requestTimeout", "expected at least 100 ms");
  const connectTimeoutMs = parseDuration(options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS, "connectTimeout");
  if (connectTimeoutMs < 100) throw new InvalidOptionsError("connectTimeout", "expected at least 100 ms");
  const maxReceiveCount = options.maxReceiveCount ?? 50;
  if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 0 || maxReceiveCount > 1000) {
    throw new InvalidOptionsError("maxReceiveCount", "expected an integer from 0 (no redrive policy) to 1000");
  }
  const groupId = options.messageGroupId ?? ((_queue: string, message: OutgoingMessage) => message.id);
  if (typeof groupId !== "function") throw new InvalidOptionsError("messageGroupId", "expected a function");
  const endpoint = renamedOption<string>("sqs", options, "endpoint", "url");
  if (options.client !== undefined) {
    assertClientShape("client", options.client, ["send", "destroy"], "an SQSClient");
    for (const field of ["url", "endpoint", "region", "clientConfig"] as const) {
      if (options[field] !== undefined)
        throw new InvalidOptionsError(field, "configures the client the broker builds; with `client`, configure that client");
    }
  } else if (endpoint !== undefined && typeof endpoint !== "string") {
    throw new InvalidOptionsError(options.url === undefined ? "endpoint" : "url", "expected a URL string");
  }
  return {
    client: options.client,
    endpoint,
    region: options.region,
    clientConfig: options.clientConfig,
    prefix,
    create: mode === "create",
    fifo,
    groupId,
    maxPayloadBytes,
    waitSeconds,
    maxLoops,
    lingerMs,
    connectTimeoutMs,
    timeoutMs,
    maxReceiveCount,
    countsIncludeInFlight: options.countsIncludeInFlight ?? false,
  };
}
