/**
 * The connections of a broker: one for commands (scripts, pings, INFO) and one per consumer for
 * blocking, all opened with safe settings (reconnect forever with core's reconnectDelay, detect
 * dead links, resend unanswered commands); the disconnected and reconnected events, the
 * insecure-connection and server-configuration warnings, request timeouts, and the errors made of
 * ioredis's (redacted: they carry command arguments, AUTH's included).
 */
import {
  type BrokerClosedError,
  type BrokerConnectionError,
  type BrokerEventMap,
  brokerClosedError,
  brokerConnectionError,
  type Emitter,
  FirstConnection,
  isLoopbackHost,
  reconnectDelay,
  redactedCause,
  serializeError,
  warnInsecureConnection,
  withTimeout,
} from "@jobs/core/adapter";
import { Redis, type RedisOptions } from "ioredis";
import { duplicateCluster, isCluster } from "./internal/cluster.js";
import { FUSED_SCRIPTS, registerScripts, type ScriptName, type ScriptRunner, type Scripts } from "./internal/scripts.js";
import type { RedisSettings } from "./options.js";

/** A `BrokerConnectionError` saying what failed, with the native error's redacted copy as its cause. */
export function connectionError(what: string, error: unknown): BrokerConnectionError {
  return brokerConnectionError("redis", what, error);
}

/** The error of anything asked of a closed broker. */
export function closedError(): BrokerClosedError {
  return brokerClosedError("redis");
}

/** True for an error reply of the server (nothing ran), as opposed to a lost connection or a timeout. */
export function isReplyError(error: unknown): boolean {
  return (error as Error)?.name === "ReplyError";
}

/** What the connection needs from its broker. */
export interface ConnectionHost {
  /** The broker was closed (a connection dropping then is no news). */
  readonly closed: boolean;
  /** The command connection is back after `disconnected`: consumers look for work again. */
  reconnected(): void;
  /** What the server's settings void, read once after the first connection. @default the broker's (`brokerConfigWarnings`) */
  readonly configWarnings?: (redis: Redis) => Promise<ConfigWarning[]>;
}

/** A `config-warning`: a server setting that voids a guarantee. */
export interface ConfigWarning {
  readonly code: string;
  readonly message: string;
}

/** One field of an INFO reply, or undefined. */
export function infoField(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*)$`, "m").exec(info)?.[1]?.trim();
}

/** The broker's warnings: eviction on, AOF off (INFO); none when INFO is denied (an ACL). */
export async function brokerConfigWarnings(redis: Redis): Promise<ConfigWarning[]> {
  let info: string;
  try {
    info = await redis.info();
  } catch {
    return []; // INFO may be denied by an ACL: nothing to check then.
  }
  const warnings: ConfigWarning[] = [];
  const policy = infoField(info, "maxmemory_policy");
  if (policy !== undefined && policy !== "noeviction") {
    warnings.push({
      code: "JOBS_REDIS_EVICTION",
      message: `[jobs] [redis] maxmemory-policy is "${policy}": Redis may evict job keys under memory pressure, losing jobs; set it to "noeviction"`,
    });
  }
  if (infoField(info, "aof_enabled") === "0") {
    warnings.push({
      code: "JOBS_REDIS_NO_AOF",
      message:
        "[jobs] [redis] AOF is off (appendonly no): jobs accepted since the last snapshot are lost if Redis crashes; set appendonly yes (appendfsync everysec or always)",
    });
  }
  return warnings;
}

export class RedisConnection implements Scripts {
  readonly #settings: RedisSettings;
  readonly #events: Emitter<BrokerEventMap>;
  readonly #host: ConnectionHost;
  readonly #redis: Redis;
  readonly #run: ScriptRunner;
  #fused: ScriptRunner<"fetch" | "settle"> | undefined;
  readonly #heartbeat: NodeJS.Timeout;
  readonly #blockers = new Set<Redis>();
  #wasReady = false;
  #down = false;
  #lastError: unknown;
  readonly #first: FirstConnection;

  constructor(settings: RedisSettings, events: Emitter<BrokerEventMap>, host: ConnectionHost) {
    this.#settings = settings;
    this.#events = events;
    this.#host = host;
    this.#redis = this.connect("command");
    this.#run = registerScripts(this.#redis);
    const o = this.#redis.options;
    this.#first = new FirstConnection(
      "redis",
      o.path ? String(o.path) : `${String(o.host ?? "localhost")}:${String(o.port ?? 6379)}`,
      settings.connectTimeoutMs,
      events,
    );
    this.#redis.on("error", (error: unknown) => {
      this.#lastError = error;
      this.#first.failed(error);
    });
    this.#redis.on("close", () => {
      if (!this.#wasReady || this.#down || this.#host.closed) return;
      this.#down = true;
      const error = this.#lastError === undefined ? undefined : serializeError(redactedCause(this.#lastError));
      this.#events.emit("disconnected", error === undefined ? {} : { error });
    });
    this.#redis.on("ready", () => this.#ready());
    // A cluster's nodes are learned at run time: only a single server's host is checked.
    if (!this.#redis.isCluster && !isLoopbackHost(String(o.host ?? "localhost")) && !o.password && !o.tls && !o.path) {
      warnInsecureConnection(
        this.#events,
        "redis",
        `${String(o.host)} is not on loopback and the connection has neither TLS nor a password: anyone on the network can read and forge jobs`,
      );
    }
    this.#heartbeat = setInterval(() => {
      this.#redis.ping().catch(() => {});
    }, settings.heartbeatMs);
    this.#heartbeat.unref();
  }

  /** The command connection was up at least once: calls go out (or wait in the offline queue) from then on. */
  get everConnected(): boolean {
    return this.#first.connected;
  }

  /**
   * Resolves once the command connection was up at least once. Before that, waits at most the
   * connect timeout, then rejects with a definite `BrokerConnectionError` (at once, non-retryable,
   * when Redis refused the credentials). Nothing is queued meanwhile, so nothing is sent later.
   */
  whenConnected(): Promise<void> {
    return this.#first.wait();
  }

  /** The command connection is up (false while connecting, down or closed). */
  get live(): boolean {
    return this.#redis.status === "ready";
  }

  #ready(): void {
    const first = !this.#wasReady;
    this.#wasReady = true;
    this.#lastError = undefined;
    this.#first.connectedNow();
    if (this.#down) {
      this.#down = false;
      this.#events.emit("reconnected", {});
      this.#host.reconnected();
    }
    if (!first) return;
    if (this.#settings.options.checkServerConfig !== false) void this.#checkServerConfig();
  }

  async #checkServerConfig(): Promise<void> {
    const warnings = await (this.#host.configWarnings ?? brokerConfigWarnings)(this.#redis);
    for (const warning of warnings) this.#events.emit("config-warning", warning);
  }

  /** The command connection (a store registers its own scripts on it). */
  get command(): Redis {
    return this.#redis;
  }

  /** Opens a connection with the adapter's safe settings: reconnect forever, detect dead links, resend unanswered commands. */
  connect(role: "command" | "blocking" | "subscriber"): Redis {
    const s = this.#settings;
    const safe: RedisOptions = {
      maxRetriesPerRequest: null,
      enableOfflineQueue: true,
      autoResendUnfulfilledCommands: true,
      // Any reply outstanding without a byte for this long: destroy the socket and reconnect.
      socketTimeout: role === "blocking" ? s.maxBlockMs + s.heartbeatTimeoutMs : s.heartbeatTimeoutMs,
      connectTimeout: s.connectTimeoutMs,
      // ioredis counts attempts from 1: the first wait is 50 ms.
      retryStrategy: (times: number) => reconnectDelay(times - 1, { initialMs: 50, maxMs: s.maxReconnectDelayMs }),
      disableClientInfo: true,
      // close() ends a connection after QUIT when it is live; one that is down has nothing left to
      // say, so it is destroyed soon instead of holding the process for ioredis's 2-s default.
      disconnectTimeout: 100,
      connectionName: `jobs-${role}`,
    };
    // Replies as arrays (RESP2 shapes), whatever protocol is negotiated.
    const shapes = { replyMapping: "legacy" } as const;
    const template = s.client;
    let redis: Redis;
    if (template === undefined)
      redis = new Redis(s.options.url ?? "redis://127.0.0.1:6379", { ...s.connectionOptions, ...safe, ...shapes });
    // A Cluster has every method and event the broker uses on a Redis (commands, defineCommand, status).
    else if (isCluster(template)) redis = duplicateCluster(template, { ...s.connectionOptions, ...safe, ...shapes }) as unknown as Redis;
    else redis = template.duplicate({ ...s.connectionOptions, ...safe, ...shapes });
    if (role !== "command") {
      this.#blockers.add(redis);
      redis.on("error", () => {}); // reported through the command connection's events
      redis.on("end", () => this.#blockers.delete(redis));
    }
    return redis;
  }

  /** Runs one of the fused scripts (registered on first use), with the store's base as the last key. */
  runFused(name: "fetch" | "settle", keys: readonly string[], args: readonly (string | number)[], timed = false): Promise<unknown> {
    this.#fused ??= registerScripts(this.#redis, FUSED_SCRIPTS);
    const call = this.#fused(name, keys, args);
    return timed ? withTimeout(call, this.#settings.requestTimeoutMs) : call;
  }

  run(name: ScriptName, keys: readonly string[], args: readonly (string | number)[], timed = false): Promise<unknown> {
    const call = this.#run(name, keys, args);
    return timed ? withTimeout(call, this.#settings.requestTimeoutMs) : call;
  }

  /** Waits for `work` at most the request timeout, and never fails. */
  bounded(work: Promise<unknown>): Promise<unknown> {
    return withTimeout(work, this.#settings.requestTimeoutMs).catch(() => {});
  }

  /** Stops the heartbeat and closes every connection (QUIT first when the command connection is live). */
  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    this.#first.abort(closedError());
    for (const blocker of this.#blockers) blocker.disconnect();
    // QUIT only on a live connection: one still connecting (or down) would wait for the timeout.
    if (this.live) await this.bounded(this.#redis.quit());
    this.#redis.disconnect();
  }
}
