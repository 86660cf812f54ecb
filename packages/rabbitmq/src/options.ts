/** The options of `createRabbitmqBroker`, their defaults and their validation. */
import {
  assertClientShape,
  type BrokerCapabilities,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type Duration,
  InvalidOptionsError,
  isLoopbackHost,
  type LoggerOption,
  parseDuration,
  redact,
  renamedOption,
} from "@jobs/core/adapter";
import type { ChannelModel, Options } from "amqplib";
import { rabbitmqCapabilities, rabbitmqInstanceCapabilities } from "./capabilities.js";
import { assertPrefix, type WorkQueueKind } from "./internal/topology.js";

/** Options of `createRabbitmqBroker`. */
export interface RabbitmqBrokerOptions {
  /** Connection URL ("amqp://user:pass@host:5672/vhost", amqps for TLS) or amqplib connect options. @default undefined (required unless `client` is given) */
  readonly url?: string | Options.Connect;
  /** An open amqplib connection (`ChannelModel`) to use instead of `url`; `close()` leaves it open and a drop is not repaired. Checked by shape. @default undefined */
  readonly client?: ChannelModel;
  /** @deprecated Renamed `client` (same meaning); removed in the next major release. */
  readonly connection?: ChannelModel;
  /** Socket options for amqplib (TLS `ca`, `cert`, …); never disables certificate checks itself. @default {} */
  readonly socketOptions?: Readonly<Record<string, unknown>>;
  /** Prefix of every queue and exchange, so a user can be limited to `^jobs\.` resources. @default "jobs." */
  readonly prefix?: string;
  /** Heartbeat interval: a dead peer is noticed after about two of them. Whole seconds. @default "10s" */
  readonly heartbeat?: Duration;
  /** A call made before the first connection waits this long for it, then fails with a definite `BrokerConnectionError` (nothing was sent); each connect attempt is bounded by it too. @default "10s" */
  readonly connectTimeout?: Duration;
  /** Bound on every broker call (declare, publish confirm, a wait for a reconnect); a publish without a verdict by then is ambiguous. @default "10s" */
  readonly requestTimeout?: Duration;
  /** Longest wait between reconnect attempts (attempts back off from 100 ms up to this, forever). @default "5s" */
  readonly maxReconnectDelay?: Duration;
  /** The server's `consumer_timeout` (AMQP does not tell it): channels rotate at a tenth of it, a longer job timeout gets a `config-warning`; 0: none. @default "30m" */
  readonly consumerTimeout?: Duration;
  /** Number of delay-ladder levels; the longest native delay is `delayUnit × (2^levels − 1)`. @default 16 */
  readonly delayLevels?: number;
  /** Step of the delay ladder (delays are rounded up to it). @default "100ms" */
  readonly delayUnit?: Duration;
  /** `"classic"` queues, or replicated `"quorum"` queues (their own delivery count and `deliveryLimit`, priority `"none"`); ladder and dead queues stay classic. @default "classic" */
  readonly queueType?: "classic" | "quorum";
  /** `"native"`: one queue with `x-max-priority`; `"none"`: one plain queue per priority level (quorum queues allow only this). @default "native" (classic), "none" (quorum) */
  readonly priority?: "native" | "none";
  /** Quorum queues only: `x-delivery-limit`, a crash-loop backstop; keep it above the worker's `maxDeliveries` (default 10). @default 20 */
  readonly deliveryLimit?: number;
  /** Declare queues, exchanges and bindings on first use; false for a user without configure permission (an admin declares them). @default true */
  readonly declare?: boolean;
  /** Largest message body accepted, in bytes. @default 8388608 (8 MiB; RabbitMQ's own limit is 128 MiB) */
  readonly maxPayloadBytes?: number;
  /** Where this broker's warnings and errors are logged (pino, console, …). `false` logs nothing. @default `console`, once per code, for what no listener hears */
  readonly logger?: LoggerOption;
}

/** Options checked, with their defaults applied. */
export interface RabbitMQSettings {
  readonly given: ChannelModel | undefined;
  readonly url: string | Options.Connect | undefined;
  readonly socketOptions: Record<string, unknown>;
  readonly prefix: string;
  /** `host:port` of the URL, for messages (never the credentials). */
  readonly host: string;
  readonly connectTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxReconnectMs: number;
  /** The server's `consumer_timeout` as configured (0: none). */
  readonly consumerTimeoutMs: number;
  readonly levels: number;
  readonly unitMs: number;
  readonly declare: boolean;
  readonly workQueue: WorkQueueKind;
  readonly capabilities: BrokerCapabilities;
  /** A non-loopback host without TLS (the broker warns). */
  readonly insecure: boolean;
}

/** Checks the options (`InvalidOptionsError` naming the field) and applies the defaults. */
export function resolveRabbitMQOptions(options: RabbitmqBrokerOptions): RabbitMQSettings {
  if (typeof options !== "object" || options === null) throw new InvalidOptionsError("options", "expected an options object");
  const given = renamedOption<ChannelModel>("rabbitmq", options, "connection", "client");
  if (given !== undefined) {
    const field = options.client === undefined ? "connection" : "client";
    assertClientShape(field, given, ["createConfirmChannel", "createChannel", "on", "close"], "an open amqplib connection (ChannelModel)");
  } else if (typeof options.url !== "string" && typeof options.url !== "object") {
    throw new InvalidOptionsError("url", "expected a connection URL (or options.client)");
  }
  const prefix = options.prefix ?? "jobs.";
  assertPrefix(prefix);
  const heartbeatS = Math.ceil(parseDuration(options.heartbeat ?? "10s", "heartbeat") / 1000);
  const requestTimeoutMs = parseDuration(options.requestTimeout ?? "10s", "requestTimeout");
  if (requestTimeoutMs < 1) throw new InvalidOptionsError("requestTimeout", "expected at least 1 ms");
  const connectTimeoutMs = parseDuration(options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS, "connectTimeout");
  if (connectTimeoutMs < 1) throw new InvalidOptionsError("connectTimeout", "expected at least 1 ms");
  const maxReconnectMs = Math.max(100, parseDuration(options.maxReconnectDelay ?? "5s", "maxReconnectDelay"));
  const consumerTimeoutMs = parseDuration(options.consumerTimeout ?? "30m", "consumerTimeout");
  const levels = options.delayLevels ?? 16;
  if (!Number.isInteger(levels) || levels < 1 || levels > 32) {
    throw new InvalidOptionsError("delayLevels", "expected an integer from 1 to 32");
  }
  const unitMs = parseDuration(options.delayUnit ?? 100, "delayUnit");
  if (!Number.isInteger(unitMs) || unitMs < 1) throw new InvalidOptionsError("delayUnit", "expected a whole number of ms ≥ 1");
  const maxPayloadBytes = options.maxPayloadBytes ?? rabbitmqCapabilities.maxPayloadBytes;
  if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 1 || maxPayloadBytes > 134_217_728) {
    throw new InvalidOptionsError("maxPayloadBytes", "expected an integer from 1 to 134217728 (RabbitMQ's max_message_size)");
  }
  const queueType = options.queueType ?? "classic";
  if (queueType !== "classic" && queueType !== "quorum") throw new InvalidOptionsError("queueType", 'expected "classic" or "quorum"');
  const priority = options.priority ?? (queueType === "quorum" ? "none" : "native");
  if (priority !== "native" && priority !== "none") throw new InvalidOptionsError("priority", 'expected "native" or "none"');
  if (queueType === "quorum" && priority === "native") {
    throw new InvalidOptionsError("priority", 'quorum queues have no five-level priority: use priority "none" (one queue per level)');
  }
  const deliveryLimit = options.deliveryLimit ?? 20;
  if (!Number.isInteger(deliveryLimit) || deliveryLimit < 1) throw new InvalidOptionsError("deliveryLimit", "expected a positive integer");
  const url = options.url;
  let resolvedUrl: string | Options.Connect | undefined;
  if (typeof url === "string") {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new InvalidOptionsError("url", `not a URL (rabbitmq): ${redact(url)}`);
    }
    if (!parsed.searchParams.has("heartbeat")) parsed.searchParams.set("heartbeat", String(heartbeatS));
    resolvedUrl = parsed.toString();
  } else {
    resolvedUrl = url === undefined ? undefined : { heartbeat: heartbeatS, ...url };
  }
  const host = typeof url === "string" ? new URL(url).hostname : (url?.hostname ?? "localhost");
  const secure = typeof url === "string" ? url.startsWith("amqps:") : url?.protocol === "amqps";
  const port = typeof url === "string" ? new URL(url).port : String(url?.port ?? "");
  const hostPort = `${host}:${port === "" ? (secure ? "5671" : "5672") : port}`;
  return {
    given,
    url: resolvedUrl,
    socketOptions: { timeout: connectTimeoutMs, ...(options.socketOptions ?? {}) },
    prefix,
    host: hostPort,
    connectTimeoutMs,
    requestTimeoutMs,
    maxReconnectMs,
    consumerTimeoutMs,
    levels,
    unitMs,
    declare: options.declare ?? true,
    workQueue: queueType === "quorum" ? { type: "quorum", deliveryLimit } : { type: "classic", priority: priority === "native" },
    capabilities: rabbitmqInstanceCapabilities(priority, maxPayloadBytes, unitMs, levels),
    insecure: given === undefined && !secure && !isLoopbackHost(host),
  };
}
