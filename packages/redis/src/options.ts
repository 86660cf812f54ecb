/** `RedisBrokerOptions` and their validation. */
import {
  assertClientShape,
  type BrokerCapabilities,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type Duration,
  InvalidOptionsError,
  type LoggerOption,
  parseDuration,
  renamedOption,
} from "@jobs/core/adapter";
import type { Cluster, Redis, RedisOptions } from "ioredis";
import { redisCapabilities, redisInstanceCapabilities } from "./capabilities.js";

/** Options of `createRedisBroker`. Connection: `url` and `connectionOptions`, or `client` (a template). */
export interface RedisBrokerOptions {
  /** Redis URL, e.g. "redis://user:pass@host:6379/0" or "rediss://…" for TLS. @default "redis://127.0.0.1:6379" */
  readonly url?: string;
  /** ioredis connection options (host, port, username, password, tls, db, …); what `url` says wins. @default {} */
  readonly connectionOptions?: RedisOptions;
  /** @deprecated Renamed `connectionOptions` (same meaning); removed in the next major release. */
  readonly connection?: RedisOptions;
  /**
   * An ioredis `Redis` or `Cluster` client used as a template: the broker opens its own connections
   * with its options (`duplicate()`) and never closes it. Checked by shape, not by class. @default undefined
   */
  readonly client?: Redis | Cluster;
  /** Prefix of every key (no "{" or "}"). @default "jobs" */
  readonly prefix?: string;
  /** Largest message body accepted, in UTF-8 bytes. @default 1048576 (1 MiB) */
  readonly maxPayloadBytes?: number;
  /** How long, at least, a published job id is remembered for dedupe (at most twice as long; 0 turns dedupe off). @default "5m" */
  readonly dedupeWindow?: Duration;
  /** A call made before the first connection waits this long for it, then fails with a definite `BrokerConnectionError` (nothing was sent); each connect attempt is bounded by it too. @default "10s" */
  readonly connectTimeout?: Duration;
  /** Give up on a publish, settlement or inspection call after this long; a publish is then ambiguous. @default "10s" */
  readonly requestTimeout?: Duration;
  /** How often each connection is pinged, so that a dead or paused link is noticed while idle. @default "5s" */
  readonly heartbeat?: Duration;
  /** @deprecated Renamed `heartbeat` (same meaning); removed in the next major release. */
  readonly heartbeatInterval?: Duration;
  /** A connection waiting this long for any byte of a reply is dead: it is destroyed and reconnected. @default "10s" */
  readonly heartbeatTimeout?: Duration;
  /** Longest a consumer with nothing to do blocks on its wake-up key before looking again. @default "5s" */
  readonly maxBlock?: Duration;
  /** Cap of the reconnect backoff (reconnects never give up). @default "2s" */
  readonly maxReconnectDelay?: Duration;
  /** At connect, read `maxmemory-policy` and AOF from INFO and emit `config-warning` when they void "at least once". @default true */
  readonly checkServerConfig?: boolean;
  /** Where this broker's warnings and errors are logged (pino, console, …). `false` logs nothing. @default `console`, once per code, for what no listener hears */
  readonly logger?: LoggerOption;
}

/** The options, checked, with their defaults filled in. */
export interface RedisSettings {
  readonly options: RedisBrokerOptions;
  /** `connectionOptions` (or its deprecated name `connection`). */
  readonly connectionOptions: RedisOptions;
  /** The template client, if given. */
  readonly client: Redis | Cluster | undefined;
  readonly prefix: string;
  readonly dedupeWindowMs: number;
  readonly connectTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly heartbeatMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly maxBlockMs: number;
  readonly maxReconnectDelayMs: number;
  readonly capabilities: BrokerCapabilities;
}

/** Checks `options` (InvalidOptionsError naming the first bad field) and fills in the defaults. */
export function resolveRedisOptions(options: RedisBrokerOptions): RedisSettings {
  if (typeof options !== "object" || options === null) throw new InvalidOptionsError("options", "expected an options object");
  if (options.url !== undefined && typeof options.url !== "string")
    throw new InvalidOptionsError("url", "expected a redis:// or rediss:// URL");
  if (options.client !== undefined) assertClientShape("client", options.client, CLIENT_METHODS, "an ioredis Redis or Cluster client");
  const connectionOptions = renamedOption<RedisOptions>("redis", options, "connection", "connectionOptions") ?? {};
  const prefix = options.prefix ?? "jobs";
  if (typeof prefix !== "string" || prefix === "" || /[{}\s]/.test(prefix)) {
    throw new InvalidOptionsError("prefix", 'expected a non-empty string without "{", "}" or spaces');
  }
  const maxPayloadBytes = options.maxPayloadBytes ?? redisCapabilities.maxPayloadBytes;
  if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 1 || maxPayloadBytes > 512 * 1024 * 1024) {
    throw new InvalidOptionsError("maxPayloadBytes", `expected an integer from 1 to 536870912, got ${String(maxPayloadBytes)}`);
  }
  const dedupeWindowMs = parseDuration(options.dedupeWindow ?? redisCapabilities.dedupeWindowMs, "dedupeWindow");
  const connectTimeoutMs = positive(options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS, "connectTimeout");
  const requestTimeoutMs = positive(options.requestTimeout ?? "10s", "requestTimeout");
  const heartbeat = renamedOption<Duration>("redis", options, "heartbeatInterval", "heartbeat");
  const heartbeatMs = positive(
    heartbeat ?? "5s",
    options.heartbeat === undefined && heartbeat !== undefined ? "heartbeatInterval" : "heartbeat",
  );
  const heartbeatTimeoutMs = positive(options.heartbeatTimeout ?? "10s", "heartbeatTimeout");
  const maxBlockMs = positive(options.maxBlock ?? "5s", "maxBlock");
  const maxReconnectDelayMs = positive(options.maxReconnectDelay ?? "2s", "maxReconnectDelay");
  return {
    options,
    connectionOptions,
    client: options.client,
    prefix,
    dedupeWindowMs,
    connectTimeoutMs,
    requestTimeoutMs,
    heartbeatMs,
    heartbeatTimeoutMs,
    maxBlockMs,
    maxReconnectDelayMs,
    capabilities: redisInstanceCapabilities(maxPayloadBytes, dedupeWindowMs),
  };
}

/** What the broker calls on a template client (on the client itself, `duplicate` only; the rest on its copies). */
const CLIENT_METHODS = ["duplicate", "defineCommand", "blpop", "ping", "info", "quit", "disconnect", "on"] as const;

function positive(value: Duration, field: string): number {
  const ms = parseDuration(value, field);
  if (!(ms > 0)) throw new InvalidOptionsError(field, "expected a positive duration");
  return ms;
}
