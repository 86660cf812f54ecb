/**
 * The NATS connection of a broker: the first connect (retried until close()), status events
 * (disconnected, reconnected), the insecure-connection check, the server-version warning, and the
 * two writes every settlement makes: a publish that waits for nothing and a PING that confirms it.
 */
import {
  BrokerClosedError,
  BrokerConnectionError,
  type BrokerEventMap,
  brokerClosedError,
  brokerConnectionError,
  coalesceWrites,
  type Emitter,
  FirstConnection,
  InvalidOptionsError,
  isLoopbackHost,
  reconnectDelay,
  redact,
  redactedCause,
  serializeError,
  warnInsecureConnection,
  withTimeout,
} from "@jobs/core/adapter";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection, type NodeConnectionOptions } from "@nats-io/transport-node";
import type { NatsSettings } from "./options.js";

/** A `BrokerConnectionError` saying what failed, with the native error's redacted copy as its cause. */
export function connectionError(what: string, error: unknown): BrokerConnectionError {
  return brokerConnectionError("nats", what, error);
}

/** The client's refusal of a server that offers no TLS when TLS was required. */
function isTlsUnavailable(error: unknown): boolean {
  // "server does not support 'tls'" (checked before CONNECT, so no credential was sent), or the transport's "tls is not available on this server".
  return /does not support 'tls'|\btls\b.*not available/i.test(String((error as Error | null)?.message ?? ""));
}

/** The error of anything asked of a closed broker. */
export function closedError(): BrokerClosedError {
  return brokerClosedError("nats");
}

/** What the rest of the adapter does when the connection comes and goes. */
export interface ConnectionHooks {
  /** Connected for the first time, before the stream is checked. */
  attach(nc: NatsConnection): void;
  /** Makes sure the stream exists: after the first connect, and again after every reconnect. */
  ensureStream(): Promise<void>;
  /** The link dropped. */
  lost(): void;
  /** The link is back and the stream checked: consumers start over. */
  restart(): Promise<void>;
}

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** The longest close() waits for the server to confirm what it sent last. */
const CLOSE_FLUSH_MS = 2_000;

export class NatsBrokerConnection {
  /** close() was called. */
  closed = false;
  /** The link is up (false while reconnecting). */
  connected = false;
  readonly #settings: NatsSettings;
  readonly #events: Emitter<BrokerEventMap>;
  readonly #hooks: ConnectionHooks;
  readonly #ownsConnection: boolean;
  #ready: Promise<void> | undefined;
  #up = false;
  #nc: NatsConnection | undefined;
  #jsm: JetStreamManager | undefined;
  #nextFlush: Deferred | undefined;
  /** Ends the pause between first-connect attempts (close() calls it). */
  #stopWaiting: (() => void) | undefined;
  /** What calls made before the first connection wait for (at most `connectTimeout`). */
  #first: FirstConnection;
  /** TLS was asked for (tls:// or the `tls` option): a server without it is a final refusal, not a retry. */
  #tlsRequired = false;

  constructor(settings: NatsSettings, events: Emitter<BrokerEventMap>, hooks: ConnectionHooks) {
    this.#settings = settings;
    this.#events = events;
    this.#hooks = hooks;
    this.#ownsConnection = settings.client === undefined;
    this.#first = new FirstConnection("nats", redact(settings.options.url ?? "nats://127.0.0.1:4222"), settings.connectTimeoutMs, events);
  }

  /** Starts connecting (the insecure-connection check runs now). */
  start(): void {
    this.#ready = this.#init();
    this.#ready.then(
      () => this.#first.connectedNow(),
      (error: unknown) => this.#first.abort(error),
    );
  }

  /** A connection was made (or given): close() has deliveries and publishes to end. */
  get opened(): boolean {
    return this.#nc !== undefined;
  }

  /** Connected once and the stream checked. */
  get up(): boolean {
    return this.#up;
  }

  /** The connection (once `open()` resolved). */
  get nc(): NatsConnection {
    return this.#nc as NatsConnection;
  }

  /** The JetStream manager (once `open()` resolved). */
  get jsm(): JetStreamManager {
    return this.#jsm as JetStreamManager;
  }

  async #init(): Promise<void> {
    const { options } = this.#settings;
    let nc = this.#settings.client;
    if (nc === undefined) {
      const raw = options.url ?? "nats://127.0.0.1:4222";
      const auth: { user?: string; pass?: string; token?: string } = {};
      const schemes = new Set<string>();
      const servers = raw.split(",").map((s) => {
        let url: URL;
        try {
          url = new URL(s.trim().includes("://") ? s.trim() : `nats://${s.trim()}`);
        } catch {
          throw new InvalidOptionsError("url", `expected nats://[user:pass@]host:port, got ${JSON.stringify(redact(s))}`);
        }
        if (url.protocol !== "nats:" && url.protocol !== "tls:") {
          throw new InvalidOptionsError("url", `expected the nats:// or tls:// scheme, got ${JSON.stringify(url.protocol)}`);
        }
        schemes.add(url.protocol);
        if (url.username !== "" && url.password !== "") {
          auth.user = decodeURIComponent(url.username);
          auth.pass = decodeURIComponent(url.password);
        } else if (url.username !== "") auth.token = decodeURIComponent(url.username);
        if (url.protocol === "nats:") this.#warnInsecure(url.hostname, url.username !== "");
        return `${url.hostname.includes(":") ? `[${url.hostname}]` : url.hostname}:${url.port || "4222"}`;
      });
      if (schemes.size > 1) throw new InvalidOptionsError("url", "mixes tls:// and nats:// servers; give them all one scheme");
      // tls:// requires TLS: the client then refuses a server that does not offer it, never plaintext.
      this.#tlsRequired = schemes.has("tls:") || options.connectionOptions?.tls != null;
      const tls = schemes.has("tls:") ? { tls: options.connectionOptions?.tls ?? {} } : {};
      nc = await this.#firstConnect({
        servers,
        name: "@jobs/nats",
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        pingInterval: this.#settings.heartbeatMs,
        maxPingOut: 2,
        timeout: this.#settings.connectTimeoutMs,
        ...auth,
        ...options.connectionOptions,
        ...tls,
      });
      if (this.closed) {
        await nc.close();
        throw closedError();
      }
    }
    this.#nc = nc;
    this.#coalesce(nc);
    this.connected = !nc.isClosed();
    this.#jsm = await jetstreamManager(nc, { timeout: this.#settings.requestTimeoutMs, checkAPI: false });
    this.#hooks.attach(nc);
    void this.#watch(nc);
    await this.#hooks.ensureStream();
    this.#up = true;
    const version = /^(\d+)\.(\d+)/.exec(nc.info?.version ?? "");
    if (version !== null && (Number(version[1]) < 2 || (Number(version[1]) === 2 && Number(version[2]) < 10))) {
      this.#events.emit("config-warning", {
        code: "JOBS_NATS_LAZY_FSYNC",
        message: `[jobs] [nats] nats-server ${nc.info?.version} fsyncs JetStream files lazily (about every 2 minutes) and has no sync_interval setting: a machine crash can lose acknowledged jobs. nats-server 2.10+ accepts "jetstream { sync_interval: always }"`,
      });
    }
  }

  /**
   * The first connection, retried here rather than by the client (`waitOnFirstConnect`), so that
   * close() stops the retries: the client's own loop cannot be cancelled before it connects.
   * Retries forever unless `maxReconnectAttempts` is set (or `waitOnFirstConnect: false`: one
   * try), about `reconnectTimeWait` apart (core's reconnectDelay, which never waits longer);
   * gives up on a second authorization error in a row, as the client does.
   */
  async #firstConnect(options: NodeConnectionOptions): Promise<NatsConnection> {
    const servers = Array.isArray(options.servers) ? options.servers.join(",") : String(options.servers);
    const limit = options.maxReconnectAttempts ?? -1;
    const waitMs = options.reconnectTimeWait ?? 500;
    let authFailures = 0;
    for (let attempt = 0; ; attempt++) {
      try {
        return await connect({ ...options, waitOnFirstConnect: false });
      } catch (error) {
        if (this.closed) throw closedError();
        this.#first.failed(error);
        const name = (error as Error | null)?.name;
        authFailures = name === "AuthorizationError" || name === "UserAuthenticationExpiredError" ? authFailures + 1 : 0;
        if (this.#tlsRequired && isTlsUnavailable(error)) {
          throw new BrokerConnectionError(
            `[jobs] [nats] ${servers} does not offer TLS, which the tls:// URL (or the tls option) requires; nothing was sent in plaintext`,
            { cause: redactedCause(error), retryable: false },
          );
        }
        const last = options.waitOnFirstConnect === false || (limit >= 0 && attempt >= limit) || authFailures >= 2;
        if (last) throw connectionError(`cannot connect to ${servers}`, error);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, reconnectDelay(attempt, { initialMs: waitMs, maxMs: waitMs }));
        this.#stopWaiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#stopWaiting = undefined;
      if (this.closed) throw closedError();
    }
  }

  #warnInsecure(host: string, credentials: boolean): void {
    const o = this.#settings.options.connectionOptions;
    const secured = credentials || o?.tls != null || o?.user !== undefined || o?.token !== undefined || o?.authenticator !== undefined;
    if (!isLoopbackHost(host) && !secured) warnInsecureConnection(this.#events, "nats", `connecting to ${host} without TLS or credentials`);
  }

  /**
   * The client writes every publish (each ack) and each flush's PING to the socket on its own; a
   * worker's acks come from many promise reactions of one turn. Core's `coalesceWrites` sends a
   * turn's writes in one system call. Only on a connection this broker opened, and again on the
   * socket of every reconnect (`protocol.transport.socket`, left alone if it is not there).
   */
  #coalesce(nc: NatsConnection): void {
    if (!this.#ownsConnection) return;
    coalesceWrites((nc as unknown as { protocol?: { transport?: { socket?: unknown } } }).protocol?.transport?.socket);
  }

  async #watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (this.closed && !this.#ownsConnection) break;
      if (status.type === "disconnect") {
        this.connected = false;
        this.#hooks.lost();
        if (!this.closed) this.#events.emit("disconnected", {});
      } else if (status.type === "reconnect") {
        this.connected = true;
        this.#coalesce(nc);
        if (this.closed) continue;
        try {
          // A server that lost its store (or a stream deleted meanwhile) gets the stream back.
          if (this.#up) await this.#hooks.ensureStream();
          await this.#hooks.restart();
          this.#events.emit("reconnected", {});
        } catch (error) {
          this.#events.emit("error", { error: serializeError(error) });
        }
      }
    }
  }

  /**
   * Resolves once the connection is up and the stream exists. Before that, waits at most the
   * connect timeout and rejects with a definite `BrokerConnectionError` naming the server and the
   * last failure (at once, non-retryable, when the server refused the credentials); the first
   * connection goes on being tried in the background.
   */
  async open(): Promise<NatsConnection> {
    if (this.closed) throw closedError();
    if (!this.#up) {
      await this.#first.wait();
      if (this.closed) throw closedError();
    }
    return this.#nc as NatsConnection;
  }

  /**
   * Resolves once the server has received everything published before the call (PING/PONG).
   * Call it right before publishing what it confirms: the PING is sent from a microtask, which
   * runs after the publishes of the same run of microtasks and after the client's own flush was
   * queued, so acks and their PING share one socket write. Every settlement of one such run
   * shares one PING; PINGs of later runs may be outstanding at the same time (the server answers
   * in order).
   */
  confirm(): Promise<void> {
    if (this.#nextFlush === undefined) {
      this.#nextFlush = deferred();
      queueMicrotask(this.#ping);
    }
    return this.#nextFlush.promise;
  }

  readonly #ping = (): void => {
    const waiting = this.#nextFlush;
    if (waiting === undefined) return;
    this.#nextFlush = undefined;
    (this.#nc as NatsConnection).flush().then(
      () => waiting.resolve(),
      (error: unknown) =>
        waiting.reject(
          this.closed
            ? new BrokerClosedError()
            : connectionError("connection lost before the server confirmed the settlement; the job may run again", error),
        ),
    );
  };

  /**
   * Publishes without waiting for anything (acks, naks, heartbeats) to a reply subject the server
   * chose. nats.js's `publish()` tests every subject for whitespace with a regular expression
   * (about 2 % of a job's client CPU on the consume path, measured in instructions); its protocol
   * handler, which `Msg.respond()` uses for the same purpose, takes the subject as it is. Falls back
   * to `publish()` when that handler is not there, and on a closed connection (which throws).
   */
  publishRaw(subject: string, data: string | Uint8Array): void {
    try {
      const nc = this.#nc as NatsConnection;
      const protocol = (nc as unknown as { protocol?: { publish?: unknown } }).protocol;
      if (typeof protocol?.publish === "function" && !nc.isClosed()) {
        (protocol as { publish(subject: string, data: string | Uint8Array): void }).publish(subject, data);
      } else nc.publish(subject, data);
    } catch (error) {
      // Only after close (the connection is gone): the message is redelivered after its lease.
      if (!this.closed) this.#events.emit("error", { error: serializeError(error) });
    }
  }

  /** The first step of close(): no more first-connect attempts, and every part sees `closed`. */
  shut(): void {
    this.closed = true;
    this.#stopWaiting?.();
    this.#first.abort(closedError());
  }

  /** The last step of close(): waits (bounded) for the server to process what was sent, then closes a connection of our own. */
  async end(): Promise<void> {
    const nc = this.#nc;
    if (nc === undefined) return;
    // Once the server has processed the unsubscribes and naks (PONG), no pull request of this
    // instance can take a message published after close() resolved.
    if (this.connected && !nc.isClosed())
      await withTimeout(nc.flush(), Math.min(this.#settings.requestTimeoutMs, CLOSE_FLUSH_MS)).catch(() => {});
    if (this.#ownsConnection) await nc.close().catch(() => {});
  }
}
