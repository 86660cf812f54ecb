import {
  type Broker,
  BrokerClosedError,
  BrokerConnectionError,
  type DeadLetterReason,
  type Duration,
  EnqueueOutcomeUnknownError,
  InvalidOptionsError,
  type JobsError,
  PayloadTooLargeError,
  type QueueCounts,
  type SerializedError,
  UnknownQueueError,
} from "@jobs/core";
import {
  type BrokerCapabilities,
  type BrokerEventMap,
  type ConsumeOptions,
  clock,
  coalesceWrites,
  type DeadLetter,
  type DeadLetterRecord,
  type Delivery,
  Emitter,
  isLoopbackHost,
  type OutgoingMessage,
  type PublishOutcome,
  parseDuration,
  redact,
  type Subscription,
  serializeError,
} from "@jobs/core/adapter";
import { AckPolicy, type JetStreamManager, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import {
  connect,
  createInbox,
  headers,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription as NatsSubscription,
  type NodeConnectionOptions,
} from "@nats-io/transport-node";
import { ACK, type DeliveryHost, HeldDeliveries, NatsDelivery, sequenceOf } from "./internal/delivery.js";
import { Puller } from "./internal/puller.js";

/** What the NATS JetStream broker does natively (the defaults; options narrow `broker.capabilities`). */
export const natsCapabilities: BrokerCapabilities = {
  priority: "none",
  maxDelayMs: Number.POSITIVE_INFINITY,
  maxPayloadBytes: 1_000_000,
  dedupeWindowMs: 120_000,
  leaseExtension: true,
  durable: true,
  redeliverOnClose: false,
  timerResolutionMs: 10,
};

/** Options of `createNatsBroker`. */
export interface NatsBrokerOptions {
  /** Server URL (or several, comma-separated); credentials in it are used and never shown. @default "nats://127.0.0.1:4222" */
  readonly url?: string;
  /** Extra `connect()` options of @nats-io/transport-node; they override ours (reconnect forever, ping every 2 s). @default {} */
  readonly connectionOptions?: NodeConnectionOptions;
  /** Use this connection instead of opening one; `close()` leaves it open. @default undefined (the broker connects) */
  readonly connection?: NatsConnection;
  /** Work-queue stream that holds every queue of this broker; created if missing. @default "JOBS" */
  readonly stream?: string;
  /** First token of the stream's subjects: `<prefix>.<queue>.ready|delayed|dead`. @default "jobs" */
  readonly subjectPrefix?: string;
  /** Replicas of the stream when the broker creates it. @default 1 */
  readonly replicas?: number;
  /** Duplicate window of the stream when the broker creates it: dedupe of enqueues by job id. @default "2m" */
  readonly duplicateWindow?: Duration;
  /** Largest body accepted, in UTF-8 bytes; leave room below the server's max_payload for headers. @default 1000000 */
  readonly maxPayloadBytes?: number;
  /** Longest delay declared to core (it re-delays longer ones on receipt); lower it to test that path. @default Infinity */
  readonly maxDelay?: Duration;
  /** Bound on every JetStream request and PubAck; a publish past it has an unknown outcome. @default "10s" */
  readonly requestTimeout?: Duration;
}

const DUE = "Jobs-Due";
const REASON = "Jobs-Reason";
const FAILED_AT = "Jobs-Failed-At";
const ERROR = "Jobs-Error";
const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;
const STREAM_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const DAY_MS = 86_400_000;
const SCHEDULER_PREFETCH = 128;
/**
 * How long a pull request of a ready consumer lasts on the server: the longest `Subscription.pause`
 * waits for the requests already sent to end (JetStream cannot cancel one). Idle, each costs one
 * request and one 408 per period; with a backlog, requests are filled long before they expire.
 */
const READY_EXPIRES_MS = 2_000;
/** AckWait of the delay consumer: a server restart forgets nak delays, so held jobs come back (and are held again) within it. */
const SCHEDULER_ACK_WAIT_MS = 5_000;
const NOT_FOUND = 404;

const fail = (message: string): never => {
  throw new InvalidOptionsError("options", message);
};

/** Queue and job names become subject tokens: only letters, digits, `_` and `-` (no `.`, `*`, `>` or spaces). */
function token(queue: string): string {
  if (typeof queue !== "string" || !TOKEN.test(queue)) {
    throw new InvalidOptionsError(
      "queue",
      `[nats] a queue name becomes a subject token and may contain only letters, digits, "_" and "-" (1-128), got ${JSON.stringify(queue)}`,
    );
  }
  return queue;
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

interface Pending {
  resolve(duplicate: boolean): void;
  reject(error: JobsError): void;
  readonly at: number;
  readonly subject: string;
  readonly queue: string;
}

interface Names {
  readonly ready: string;
  readonly delayed: string;
  readonly dead: string;
  readonly all: string;
}

function connectionError(what: string, error: unknown): BrokerConnectionError {
  const e = serializeError(error);
  return new BrokerConnectionError(`[jobs] [nats] ${what}: ${e.message}`, { cause: e });
}

/** The HTTP-like status of a JetStream API error (404: no such stream, consumer or message). */
function errorCode(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === "number" ? status : undefined;
}

class NatsBrokerImpl implements Broker, DeliveryHost {
  readonly name: string = "nats";
  readonly capabilities: BrokerCapabilities;
  readonly #events = new Emitter<BrokerEventMap>();
  readonly on: Broker["on"] = this.#events.on;
  readonly #stream: string;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #holdMs: number;
  readonly #ownsConnection: boolean;
  readonly #ready: Promise<void>;
  readonly #ensure: () => Promise<void>;
  readonly #names = new Map<string, Names>();
  readonly #pullers = new Set<{ readonly puller: Puller; readonly setup: () => Promise<void> }>();
  readonly #held = new HeldDeliveries();
  readonly #pending = new Map<string, Pending>();
  readonly #replies = `${createInbox()}.`;
  #requests = 0;
  #sweeper: NodeJS.Timeout | undefined;
  #replySub: NatsSubscription | undefined;
  #nc: NatsConnection | undefined;
  #jsm: JetStreamManager | undefined;
  #connected = false;
  #up = false;
  #nextFlush: Deferred | undefined;
  #closing: Promise<void> | undefined;
  /** Ends the pause between first-connect attempts (close() calls it). */
  #stopWaiting: (() => void) | undefined;
  closed = false;

  constructor(private readonly options: NatsBrokerOptions) {
    if (typeof options !== "object" || options === null) fail("expected an options object");
    this.#stream = options.stream ?? "JOBS";
    if (!STREAM_NAME.test(this.#stream)) throw new InvalidOptionsError("stream", "expected 1-64 letters, digits, _ or -");
    this.#prefix = options.subjectPrefix ?? "jobs";
    if (!TOKEN.test(this.#prefix)) throw new InvalidOptionsError("subjectPrefix", "expected one subject token: letters, digits, _ or -");
    const replicas = options.replicas ?? 1;
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) throw new InvalidOptionsError("replicas", "expected 1 to 5");
    const maxPayloadBytes = options.maxPayloadBytes ?? natsCapabilities.maxPayloadBytes;
    if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 1)
      throw new InvalidOptionsError("maxPayloadBytes", "expected a positive integer");
    const dedupeWindowMs = parseDuration(options.duplicateWindow ?? "2m", "duplicateWindow");
    if (dedupeWindowMs < 100) throw new InvalidOptionsError("duplicateWindow", "expected at least 100 ms");
    const maxDelayMs = options.maxDelay === undefined ? Number.POSITIVE_INFINITY : parseDuration(options.maxDelay, "maxDelay");
    if (maxDelayMs < 1_000) throw new InvalidOptionsError("maxDelay", "expected at least 1 s");
    this.#holdMs = Math.min(maxDelayMs, DAY_MS);
    this.#timeoutMs = parseDuration(options.requestTimeout ?? "10s", "requestTimeout");
    if (this.#timeoutMs < 1) throw new InvalidOptionsError("requestTimeout", "expected a positive duration");
    this.capabilities = { ...natsCapabilities, maxPayloadBytes, dedupeWindowMs, maxDelayMs };
    this.#ownsConnection = options.connection === undefined;
    this.#ensure = () => this.#ensureStream(replicas, dedupeWindowMs);
    this.#ready = this.#init();
    this.#ready.catch(() => {});
  }

  async #init(): Promise<void> {
    let nc = this.options.connection;
    if (nc === undefined) {
      const raw = this.options.url ?? "nats://127.0.0.1:4222";
      const auth: { user?: string; pass?: string; token?: string } = {};
      const servers = raw.split(",").map((s) => {
        let url: URL;
        try {
          url = new URL(s.trim().includes("://") ? s.trim() : `nats://${s.trim()}`);
        } catch {
          throw new InvalidOptionsError("url", `expected nats://[user:pass@]host:port, got ${JSON.stringify(redact(s))}`);
        }
        if (url.username !== "" && url.password !== "") {
          auth.user = decodeURIComponent(url.username);
          auth.pass = decodeURIComponent(url.password);
        } else if (url.username !== "") auth.token = decodeURIComponent(url.username);
        this.#warnInsecure(url.hostname, url.username !== "");
        return `${url.hostname.includes(":") ? `[${url.hostname}]` : url.hostname}:${url.port || "4222"}`;
      });
      nc = await this.#firstConnect({
        servers,
        name: "@jobs/nats",
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        pingInterval: 2_000,
        maxPingOut: 2,
        ...auth,
        ...this.options.connectionOptions,
      });
      if (this.closed) {
        await nc.close();
        throw new BrokerClosedError("[jobs] [nats] broker is closed");
      }
    }
    this.#nc = nc;
    this.#coalesce(nc);
    this.#connected = !nc.isClosed();
    this.#jsm = await jetstreamManager(nc, { timeout: this.#timeoutMs, checkAPI: false });
    this.#replySub = nc.subscribe(`${this.#replies}*`, { callback: (_error, msg) => this.#reply(msg) });
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(1_000, this.#timeoutMs));
    this.#sweeper.unref();
    void this.#watch(nc);
    await this.#ensure();
    this.#up = true;
    const version = /^(\d+)\.(\d+)/.exec(nc.info?.version ?? "");
    if (version !== null && (Number(version[1]) < 2 || (Number(version[1]) === 2 && Number(version[2]) < 10))) {
      this.#events.emit("config-warning", {
        message: `[jobs] [nats] nats-server ${nc.info?.version} fsyncs JetStream files lazily (about every 2 minutes) and has no sync_interval setting: a machine crash can lose acknowledged jobs. nats-server 2.10+ accepts "jetstream { sync_interval: always }"`,
      });
    }
  }

  /**
   * The first connection, retried here rather than by the client (`waitOnFirstConnect`), so that
   * close() stops the retries: the client's own loop cannot be cancelled before it connects.
   * Retries forever unless `maxReconnectAttempts` is set (or `waitOnFirstConnect: false`: one
   * try), `reconnectTimeWait` apart; gives up on a second authorization error in a row, as the
   * client does.
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
        if (this.closed) throw new BrokerClosedError("[jobs] [nats] broker is closed");
        const name = (error as Error | null)?.name;
        authFailures = name === "AuthorizationError" || name === "UserAuthenticationExpiredError" ? authFailures + 1 : 0;
        const last = options.waitOnFirstConnect === false || (limit >= 0 && attempt >= limit) || authFailures >= 2;
        if (last) throw connectionError(`cannot connect to ${servers}`, error);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        this.#stopWaiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#stopWaiting = undefined;
      if (this.closed) throw new BrokerClosedError("[jobs] [nats] broker is closed");
    }
  }

  #warnInsecure(host: string, credentials: boolean): void {
    const loopback = isLoopbackHost(host);
    const o = this.options.connectionOptions;
    const secured = credentials || o?.tls != null || o?.user !== undefined || o?.token !== undefined || o?.authenticator !== undefined;
    if (!loopback && !secured) {
      queueMicrotask(() =>
        this.#events.emit("insecure-connection", { message: `[jobs] [nats] connecting to ${host} without TLS or credentials` }),
      );
    }
  }

  async #ensureStream(replicas: number, dedupeWindowMs: number): Promise<void> {
    const jsm = this.#jsm as JetStreamManager;
    const subject = `${this.#prefix}.>`;
    for (let attempt = 0; ; attempt++) {
      try {
        const info = await jsm.streams.info(this.#stream);
        const c = info.config;
        if (c.retention !== RetentionPolicy.Workqueue || !c.subjects?.includes(subject)) {
          throw new InvalidOptionsError("stream", `stream "${this.#stream}" exists but is not a work-queue stream on "${subject}"`);
        }
        if (c.storage !== StorageType.File)
          this.#events.emit("config-warning", {
            message: `[jobs] [nats] stream "${this.#stream}" keeps messages in memory: they do not survive a server restart`,
          });
        if (Math.round(c.duplicate_window / 1e6) !== dedupeWindowMs) {
          this.#events.emit("config-warning", {
            message: `[jobs] [nats] stream "${this.#stream}" has a duplicate window of ${c.duplicate_window / 1e6} ms, not ${dedupeWindowMs} ms`,
          });
        }
        return;
      } catch (error) {
        if (errorCode(error) !== NOT_FOUND || attempt > 2)
          throw error instanceof InvalidOptionsError ? error : connectionError(`stream "${this.#stream}"`, error);
      }
      try {
        await jsm.streams.add({
          name: this.#stream,
          subjects: [subject],
          retention: RetentionPolicy.Workqueue,
          storage: StorageType.File,
          num_replicas: replicas,
          duplicate_window: dedupeWindowMs * 1e6,
        });
        return;
      } catch {
        // Created concurrently by another instance: read it again.
      }
    }
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
        this.#connected = false;
        this.#failPending(new EnqueueOutcomeUnknownError("[jobs] [nats] connection lost before the PubAck arrived"));
        if (!this.closed) this.#events.emit("disconnected", {});
      } else if (status.type === "reconnect") {
        this.#connected = true;
        this.#coalesce(nc);
        if (this.closed) continue;
        try {
          // A server that lost its store (or a stream deleted meanwhile) gets the stream back.
          if (this.#up) await this.#ensure();
          for (const p of this.#pullers) await p.setup();
          this.#events.emit("reconnected", {});
        } catch (error) {
          this.#events.emit("error", { error: serializeError(error) });
        }
      }
    }
  }

  /** Resolves once the connection is up and the stream exists, bounded by requestTimeout. */
  async #open(): Promise<NatsConnection> {
    if (this.closed) throw new BrokerClosedError("[jobs] [nats] broker is closed");
    if (!this.#up) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new BrokerConnectionError(`[jobs] [nats] not connected after ${this.#timeoutMs} ms`)),
          this.#timeoutMs,
        );
      });
      try {
        await Promise.race([this.#ready, timeout]);
      } finally {
        clearTimeout(timer);
      }
      if (this.closed) throw new BrokerClosedError("[jobs] [nats] broker is closed");
    }
    return this.#nc as NatsConnection;
  }

  #subjects(queue: string): Names {
    let names = this.#names.get(queue);
    if (names === undefined) {
      const base = `${this.#prefix}.${token(queue)}`;
      names = { ready: `${base}.ready`, delayed: `${base}.delayed`, dead: `${base}.dead`, all: `${base}.*` };
      this.#names.set(queue, names);
    }
    return names;
  }

  /**
   * Publishes with a reply subject of our own inbox and resolves with the PubAck's `duplicate`.
   * One subscription and one timeout sweep serve every publish: nats.js `request()` would build
   * two Error objects (with stack traces) and a timer per call, most of a publish's CPU time.
   */
  request(subject: string, body: string | Uint8Array, hdrs: MsgHdrs | undefined, queue: string): Promise<boolean> {
    const nc = this.#nc as NatsConnection;
    if (!this.#connected) return Promise.reject(new BrokerConnectionError("[jobs] [nats] not connected (reconnecting); nothing was sent"));
    return new Promise<boolean>((resolve, reject) => {
      const id = (++this.#requests).toString(36);
      try {
        nc.publish(subject, body, hdrs === undefined ? { reply: this.#replies + id } : { reply: this.#replies + id, headers: hdrs });
      } catch (error) {
        reject(this.closed ? new BrokerClosedError() : connectionError(`publish to "${subject}" not sent`, error));
        return;
      }
      this.#pending.set(id, { resolve, reject, at: clock.now(), subject, queue });
    });
  }

  #reply(msg: Msg): void {
    const id = msg.subject.slice(this.#replies.length);
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    const { subject, queue } = pending;
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      pending.reject(
        new UnknownQueueError(
          queue,
          `[jobs] [nats] no JetStream stream captures "${subject}" (is stream "${this.#stream}" deleted?); nothing was stored`,
        ),
      );
      return;
    }
    let ack: { duplicate?: boolean; error?: { code?: number; description?: string } };
    try {
      ack = JSON.parse(msg.string()) as typeof ack;
    } catch (error) {
      pending.reject(new EnqueueOutcomeUnknownError(`[jobs] [nats] unreadable PubAck for "${subject}"`, { cause: serializeError(error) }));
      return;
    }
    if (ack.error === undefined) pending.resolve(ack.duplicate === true);
    else if (ack.error.code === 503)
      pending.reject(new UnknownQueueError(queue, `[jobs] [nats] no JetStream stream captures "${subject}" (${ack.error.description})`));
    else pending.reject(new BrokerConnectionError(`[jobs] [nats] JetStream refused the publish to "${subject}": ${ack.error.description}`));
  }

  /** Rejects publishes older than requestTimeout (the map is in publish order, so the scan stops at the first young one). */
  #sweep(): void {
    const limit = clock.now() - this.#timeoutMs;
    for (const [id, pending] of this.#pending) {
      if (pending.at > limit) break;
      this.#pending.delete(id);
      pending.reject(new EnqueueOutcomeUnknownError(`[jobs] [nats] no PubAck for "${pending.subject}" within ${this.#timeoutMs} ms`));
    }
  }

  #failPending(error: JobsError): void {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    for (const pending of all) pending.reject(error);
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

  /** Stores a dead letter: the body as data, the failure in headers. */
  bury(queue: string, record: DeadLetterRecord, msgId: string): Promise<boolean> {
    const hdrs = headers();
    hdrs.set("Nats-Msg-Id", msgId);
    hdrs.set(REASON, record.reason);
    hdrs.set(FAILED_AT, String(record.failedAt));
    hdrs.set(ERROR, JSON.stringify(record.error));
    return this.request(this.#subjects(queue).dead, record.body, hdrs, queue);
  }

  /** Publishes one message to the ready or delayed subject of `queue`; `msgId` makes it idempotent. */
  send(queue: string, body: string | Uint8Array, delayMs: number, msgId: string | undefined): Promise<boolean> {
    const names = this.#subjects(queue);
    let hdrs: MsgHdrs | undefined;
    if (msgId !== undefined || delayMs > 0) {
      hdrs = headers();
      if (msgId !== undefined) hdrs.set("Nats-Msg-Id", msgId);
      if (delayMs > 0) hdrs.set(DUE, String(Date.now() + delayMs));
    }
    return this.request(delayMs > 0 ? names.delayed : names.ready, body, hdrs, queue);
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<PublishOutcome[]> {
    this.#subjects(queue);
    if (!this.#up || this.closed) await this.#open();
    const max = this.capabilities.maxPayloadBytes;
    const dedupe = this.capabilities.dedupeWindowMs > 0;
    return Promise.all(
      messages.map((m): Promise<PublishOutcome> | PublishOutcome => {
        if (m.body.length * 3 > max) {
          const size = Buffer.byteLength(m.body, "utf8");
          if (size > max) return { ok: false, error: new PayloadTooLargeError(size, max, "message") };
        }
        // Enqueues with a caller-chosen id dedupe per queue by it (Nats-Msg-Id). An id core generated
        // can only repeat if this publish were sent twice, which nats.js never does on its own (a
        // publish written before a disconnect is not written again), so it goes without the header:
        // the server keeps no duplicate-window entry for it and both sides parse a plain MSG.
        // Retries and requeues (dedupe: false) carry no id either.
        const msgId = m.dedupe && dedupe && m.generatedId !== true ? `${queue}:${m.id}` : undefined;
        return this.send(queue, m.body, m.delayMs, msgId).then(
          (duplicate) => ({ ok: true, duplicate }),
          (error: JobsError) => ({ ok: false, error }),
        );
      }),
    );
  }

  async #consumer(durable: string, filter: string, ackWaitMs: number): Promise<number> {
    const jsm = this.#jsm as JetStreamManager;
    for (let attempt = 0; ; attempt++) {
      try {
        const info = await jsm.consumers.info(this.#stream, durable);
        const current = (info.config.ack_wait ?? 30e9) / 1e6;
        if (current <= ackWaitMs) return current;
        // The server's AckWait is the shortest lease of any worker; longer leases are kept by working() heartbeats.
        await jsm.consumers.update(this.#stream, durable, { ack_wait: ackWaitMs * 1e6 });
        return ackWaitMs;
      } catch (error) {
        if (errorCode(error) !== NOT_FOUND || attempt > 2) throw connectionError(`consumer "${durable}"`, error);
      }
      try {
        await jsm.consumers.add(this.#stream, {
          durable_name: durable,
          filter_subject: filter,
          ack_policy: AckPolicy.Explicit,
          ack_wait: ackWaitMs * 1e6,
          max_ack_pending: -1,
          max_deliver: -1,
        });
        return ackWaitMs;
      } catch {
        // Created concurrently: read it again.
      }
    }
  }

  async consume(queue: string, options: ConsumeOptions, onDelivery: (delivery: Delivery) => void): Promise<Subscription> {
    const names = this.#subjects(queue);
    if (!Number.isInteger(options.prefetch) || options.prefetch < 1)
      throw new InvalidOptionsError("prefetch", "expected a positive integer");
    if (!(options.leaseMs >= 1)) throw new InvalidOptionsError("leaseMs", "expected at least 1 ms");
    const nc = await this.#open();
    const api = (durable: string): string => `$JS.API.CONSUMER.MSG.NEXT.${this.#stream}.${durable}`;
    const leaseMs = Math.ceil(options.leaseMs);
    let ackWaitMs = leaseMs;
    const ready = new Puller(
      nc,
      api(`ready_${queue}`),
      options.prefetch,
      (msg) => {
        const delivery = new NatsDelivery(this, ready, queue, msg, ackWaitMs, leaseMs);
        // A second copy of a message this process still holds (its AckWait ran out while acks or
        // heartbeats could not reach the server, or the server sent it twice): the held delivery
        // takes the new lease; the message is not handed out a second time.
        const held = this.#held.find(delivery.seq);
        if (held !== undefined) {
          held.renew(msg);
          ready.release();
          return;
        }
        this.#held.add(delivery);
        try {
          onDelivery(delivery);
        } catch (error) {
          this.#events.emit("error", { error: serializeError(error) });
        }
      },
      READY_EXPIRES_MS,
    );
    const scheduler = new Puller(nc, api(`delayed_${queue}`), SCHEDULER_PREFETCH, (msg) => this.#promote(scheduler, queue, msg));
    const entries = [
      {
        puller: ready,
        setup: async () => {
          ackWaitMs = await this.#consumer(`ready_${queue}`, names.ready, leaseMs);
          ready.reset();
        },
      },
      {
        puller: scheduler,
        setup: async () => {
          await this.#consumer(`delayed_${queue}`, names.delayed, SCHEDULER_ACK_WAIT_MS);
          scheduler.reset();
        },
      },
    ];
    try {
      await Promise.all(entries.map((entry) => entry.setup()));
    } catch (error) {
      ready.stop();
      scheduler.stop();
      throw error;
    }
    if (this.closed) throw new BrokerClosedError("[jobs] [nats] broker is closed");
    for (const entry of entries) this.#pullers.add(entry);
    return {
      stop: async () => {
        for (const entry of entries) {
          entry.puller.stop();
          this.#pullers.delete(entry);
        }
        if (this.#connected) await nc.flush().catch(() => {});
      },
      // Only the ready consumer hands out deliveries (the scheduler's only move messages to it).
      pause: () => ready.pause(),
      resume: () => ready.resume(),
    };
  }

  /** A delayed message: held again with nak(remaining) until due, then published to the ready subject and acked. */
  #promote(scheduler: Puller, queue: string, msg: Msg): void {
    const reply = msg.reply as string;
    const remaining = Number(msg.headers?.get(DUE)) - Date.now();
    if (remaining > 0) {
      this.publishRaw(reply, `-NAK {"delay":${Math.ceil(Math.min(remaining, this.#holdMs)) * 1e6}}`);
      scheduler.release();
      return;
    }
    this.send(queue, msg.data, 0, `${queue}#${sequenceOf(reply)}`)
      .then(
        () => this.publishRaw(reply, ACK),
        (error: unknown) => {
          this.publishRaw(reply, `-NAK {"delay":${1e9}}`);
          if (!this.closed) this.#events.emit("error", { error: serializeError(error) });
        },
      )
      .finally(() => scheduler.release());
  }

  /** A delivery ended (settled or lost): it no longer goes back to its queue on close. */
  forget(delivery: NatsDelivery): void {
    this.#held.delete(delivery);
  }

  async counts(queue: string): Promise<QueueCounts> {
    const names = this.#subjects(queue);
    await this.#open();
    const jsm = this.#jsm as JetStreamManager;
    try {
      const [stream, consumer] = await Promise.all([
        jsm.streams.info(this.#stream, { subjects_filter: names.all }),
        jsm.consumers.info(this.#stream, `ready_${queue}`).catch((error: unknown) => {
          if (errorCode(error) === NOT_FOUND) return undefined;
          throw error;
        }),
      ]);
      const subjects = stream.state.subjects ?? {};
      // The consumer knows what it has not delivered yet and what is delivered but unacked (even
      // when purged from the stream meanwhile); without a consumer, everything on the subject waits.
      const waiting = consumer === undefined ? (subjects[names.ready] ?? 0) : consumer.num_pending;
      const active = consumer === undefined ? 0 : consumer.num_ack_pending;
      return { waiting, delayed: subjects[names.delayed] ?? 0, active, dead: subjects[names.dead] ?? 0 };
    } catch (error) {
      throw connectionError(`counts of "${queue}"`, error);
    }
  }

  /** Dead letters of the queue in stream order (one message get per dead letter). */
  async *#dead(queue: string): AsyncGenerator<DeadLetter> {
    const names = this.#subjects(queue);
    await this.#open();
    const jsm = this.#jsm as JetStreamManager;
    for (let seq = 1; ; ) {
      const query = { seq, next_by_subj: names.dead };
      const stored = await jsm.streams.getMessage(this.#stream, query).catch((error: unknown) => {
        throw connectionError(`dead letters of "${queue}"`, error);
      });
      if (stored === null) return;
      seq = stored.seq + 1;
      const h = stored.header;
      let error: SerializedError = { name: "Error", message: "(no failure recorded)" };
      try {
        error = JSON.parse(h.get(ERROR)) as SerializedError;
      } catch {
        // Published to the dead subject by something else than this adapter: keep the defaults.
      }
      yield {
        key: String(stored.seq),
        body: stored.string(),
        reason: (h.get(REASON) || "undecodable") as DeadLetterReason,
        error,
        failedAt: Number(h.get(FAILED_AT)) || Date.parse(stored.timestamp),
      };
    }
  }

  async listDeadLetters(queue: string, options: { readonly limit: number; readonly offset?: number }): Promise<DeadLetter[]> {
    const out: DeadLetter[] = [];
    let skip = options.offset ?? 0;
    if (options.limit <= 0) return out;
    for await (const dead of this.#dead(queue)) {
      if (skip > 0) skip--;
      else if (out.push(dead) >= options.limit) break;
    }
    return out;
  }

  async removeDeadLetters(queue: string, keys: readonly string[]): Promise<number> {
    const names = this.#subjects(queue);
    await this.#open();
    const jsm = this.#jsm as JetStreamManager;
    let removed = 0;
    for (const key of new Set(keys)) {
      const seq = Number(key);
      if (!Number.isSafeInteger(seq) || seq < 1 || String(seq) !== key) continue;
      try {
        // Only this queue's dead letters: a key of another queue is an unknown key here.
        const stored = await jsm.streams.getMessage(this.#stream, { seq });
        if (stored?.subject === names.dead && (await jsm.streams.deleteMessage(this.#stream, seq, false))) removed++;
      } catch (error) {
        if (errorCode(error) !== NOT_FOUND) {
          throw connectionError(`remove dead letters of "${queue}"`, error);
        }
      }
    }
    return removed;
  }

  async purge(queue: string): Promise<void> {
    const names = this.#subjects(queue);
    await this.#open();
    await (this.#jsm as JetStreamManager).streams.purge(this.#stream, { filter: names.all }).catch((error: unknown) => {
      throw connectionError(`purge of "${queue}"`, error);
    });
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.closed = true;
    this.#stopWaiting?.();
    clearInterval(this.#sweeper);
    for (const { puller } of this.#pullers) puller.stop();
    this.#pullers.clear();
    const nc = this.#nc;
    if (nc === undefined) return;
    // Unsettled deliveries go back to their queue at once instead of after their lease.
    for (const delivery of this.#held.drain()) if (delivery.release()) this.publishRaw(delivery.reply, "-NAK");
    // Publishes already sent get their PubAck (bounded), then the connection goes.
    const deadline = clock.now() + Math.min(this.#timeoutMs, 2_000);
    while (this.#pending.size > 0 && this.#connected && clock.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    this.#failPending(new EnqueueOutcomeUnknownError("[jobs] [nats] broker closed before the PubAck arrived"));
    this.#replySub?.unsubscribe();
    // Once the server has processed the unsubscribes and naks (PONG), no pull request of this
    // instance can take a message published after close() resolved.
    if (this.#connected && !nc.isClosed()) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([nc.flush().catch(() => {}), new Promise((r) => (timer = setTimeout(r, Math.min(this.#timeoutMs, 2_000))))]);
      clearTimeout(timer);
    }
    if (this.#ownsConnection) await nc.close().catch(() => {});
  }
}

/** Creates a broker on NATS JetStream: one work-queue stream, durable pull consumers per queue. */
export function createNatsBroker(options: NatsBrokerOptions = {}): Broker {
  return new NatsBrokerImpl(options);
}
