/** `RedisStoreOptions` and their validation (the connection's options are the broker's, checked by the same code). */
import type { Duration, LoggerOption } from "@jobs/core/adapter";
import type { Cluster, Redis, RedisOptions } from "ioredis";
import { type RedisSettings, resolveRedisOptions } from "../options.js";

/** Options of `createRedisStore`. Connection: `url` and `connectionOptions`, or `client` (a template). */
export interface RedisStoreOptions {
  /** Redis URL, e.g. "redis://user:pass@host:6379/0" or "rediss://…" for TLS. @default "redis://127.0.0.1:6379" */
  readonly url?: string;
  /** ioredis connection options (host, port, username, password, tls, db, …); what `url` says wins. @default {} */
  readonly connectionOptions?: RedisOptions;
  /**
   * An ioredis `Redis` or `Cluster` client used as a template: the store opens its own connections
   * with its options (`duplicate()`) and never closes it. Checked by shape, not by class. @default undefined
   */
  readonly client?: Redis | Cluster;
  /** Prefix of every key (no "{", "}" or spaces); keys are `<prefix>:{<prefix>:store}:<part>`. @default "jobs" */
  readonly prefix?: string;
  /** A call made before the first connection waits this long for it, then fails with a definite `StoreConnectionError` (nothing was sent); each connect attempt is bounded by it too. @default "10s" */
  readonly connectTimeout?: Duration;
  /** Give up on a call after this long (`StoreConnectionError`, retryable): the write may still have been applied. @default "10s" */
  readonly requestTimeout?: Duration;
  /** How often each connection is pinged, so that a dead or paused link is noticed while idle. @default "5s" */
  readonly heartbeat?: Duration;
  /** A connection waiting this long for any byte of a reply is dead: it is destroyed and reconnected. @default "10s" */
  readonly heartbeatTimeout?: Duration;
  /** Cap of the reconnect backoff (reconnects never give up). @default "2s" */
  readonly maxReconnectDelay?: Duration;
  /** At connect, read eviction and AOF settings (INFO, CONFIG GET appendfsync) and emit `config-warning` with the window of writes a crash can lose. @default true */
  readonly checkServerConfig?: boolean;
  /** Where this store's warnings and errors are logged (pino, console, …). `false` logs nothing. @default `console`, once per code, for what no listener hears */
  readonly logger?: LoggerOption;
}

/** The options a store shares with the broker's connection. */
const STORE_FIELDS = [
  "url",
  "connectionOptions",
  "client",
  "prefix",
  "connectTimeout",
  "requestTimeout",
  "heartbeat",
  "heartbeatTimeout",
  "maxReconnectDelay",
  "checkServerConfig",
  "logger",
] as const satisfies readonly (keyof RedisStoreOptions)[];

/** Checks `options` (InvalidOptionsError naming the first bad field) and fills in the defaults. */
export function resolveRedisStoreOptions(options: RedisStoreOptions): RedisSettings {
  if (typeof options !== "object" || options === null) return resolveRedisOptions(options);
  // Only the store's own fields reach the broker's checks (none of its queue options).
  const picked = STORE_FIELDS.filter((field) => options[field] !== undefined).map((field) => [field, options[field]]);
  return resolveRedisOptions(Object.fromEntries(picked) as RedisStoreOptions);
}
