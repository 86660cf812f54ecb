import {
  type Broker,
  BrokerClosedError,
  BrokerConnectionError,
  type Duration,
  EnqueueOutcomeUnknownError,
  InvalidOptionsError,
  JobsError,
  PayloadTooLargeError,
  type QueueCounts,
} from "@jobs/core";
import {
  type BrokerCapabilities,
  type BrokerEventMap,
  type ConsumeOptions,
  type DeadLetter,
  type DeadLetterRecord,
  type Delivery,
  Emitter,
  isLoopbackHost,
  type OutgoingMessage,
  type PublishOutcome,
  parseDuration,
  type Subscription,
  serializeError,
} from "@jobs/core/adapter";
import { Redis, type RedisOptions } from "ioredis";
import { type QueueState, RedisConsumer, type Waiter } from "./internal/consumer.js";
import { cleanCause, describe, isReplyError } from "./internal/errors.js";
import { registerScripts, type ScriptRunner } from "./internal/scripts.js";
import { redisQueueKeys } from "./keys.js";

/** What the Redis adapter does natively (the defaults; an instance narrows them from its options). */
export const redisCapabilities: BrokerCapabilities = {
  priority: "native",
  maxDelayMs: Number.POSITIVE_INFINITY,
  maxPayloadBytes: 1_048_576,
  dedupeWindowMs: 300_000,
  leaseExtension: true,
  durable: true,
  redeliverOnClose: false,
  timerResolutionMs: 25,
};

/** Options of `createRedisBroker`. Connection: `url`, `connection` or `client` (a template). */
export interface RedisBrokerOptions {
  /** Redis URL, e.g. "redis://user:pass@host:6379/0" or "rediss://…" for TLS. @default "redis://127.0.0.1:6379" */
  readonly url?: string;
  /** ioredis connection options (host, port, username, password, tls, db, …); what `url` says wins. @default {} */
  readonly connection?: RedisOptions;
  /** An ioredis client used as a template: the broker opens its own connections with its options and never closes it. @default undefined */
  readonly client?: Redis;
  /** Prefix of every key (no "{" or "}"). @default "jobs" */
  readonly prefix?: string;
  /** Largest message body accepted, in UTF-8 bytes. @default 1048576 (1 MiB) */
  readonly maxPayloadBytes?: number;
  /** How long, at least, a published job id is remembered for dedupe (at most twice as long; 0 turns dedupe off). @default "5m" */
  readonly dedupeWindow?: Duration;
  /** Give up on a publish, settlement or inspection call after this long; a publish is then ambiguous. @default "10s" */
  readonly requestTimeout?: Duration;
  /** How often each connection is pinged, so that a dead or paused link is noticed while idle. @default "5s" */
  readonly heartbeatInterval?: Duration;
  /** A connection waiting this long for any byte of a reply is dead: it is destroyed and reconnected. @default "10s" */
  readonly heartbeatTimeout?: Duration;
  /** Longest a consumer with nothing to do blocks on its wake-up key before looking again. @default "5s" */
  readonly maxBlock?: Duration;
  /** Cap of the reconnect backoff (reconnects never give up). @default "2s" */
  readonly maxReconnectDelay?: Duration;
  /** At connect, read `maxmemory-policy` and AOF from INFO and emit `config-warning` when they void "at least once". @default true */
  readonly checkServerConfig?: boolean;
}

const STORED: PublishOutcome = Object.freeze({ ok: true, duplicate: false });
const DUPLICATE: PublishOutcome = Object.freeze({ ok: true, duplicate: true });

/** Marks a call that ran out of time (its command may still run later). */
class RequestTimeout extends Error {}

class RedisBrokerImpl implements Broker {
  readonly name: string = "redis";
  readonly capabilities: BrokerCapabilities;
  readonly events: Emitter<BrokerEventMap> = new Emitter<BrokerEventMap>();
  readonly on: Broker["on"] = this.events.on;
  readonly maxBlockSeconds: number;
  closed = false;
  readonly #options: RedisBrokerOptions;
  readonly #prefix: string;
  readonly #dedupeWindowMs: number;
  readonly #requestTimeoutMs: number;
  readonly #heartbeatTimeoutMs: number;
  readonly #maxBlockMs: number;
  readonly #maxReconnectDelayMs: number;
  readonly #redis: Redis;
  readonly #run: ScriptRunner;
  readonly #heartbeat: NodeJS.Timeout;
  readonly #queues = new Map<string, QueueState>();
  readonly #consumers = new Set<RedisConsumer>();
  readonly #dirty = new Set<QueueState>();
  readonly #fetchWanted = new Set<RedisConsumer>();
  readonly #blockers = new Set<Redis>();
  #flushScheduled = false;
  #microFlush = false;
  #closing: Promise<void> | undefined;
  #wasReady = false;
  #down = false;
  #lastError: unknown;

  constructor(options: RedisBrokerOptions) {
    if (typeof options !== "object" || options === null) throw new InvalidOptionsError("options", "expected an options object");
    this.#options = options;
    if (options.url !== undefined && typeof options.url !== "string")
      throw new InvalidOptionsError("url", "expected a redis:// or rediss:// URL");
    if (options.client !== undefined && !(options.client instanceof Redis)) {
      throw new InvalidOptionsError("client", "expected an ioredis Redis instance (Cluster clients are not supported yet)");
    }
    const prefix = options.prefix ?? "jobs";
    if (typeof prefix !== "string" || prefix === "" || /[{}\s]/.test(prefix)) {
      throw new InvalidOptionsError("prefix", 'expected a non-empty string without "{", "}" or spaces');
    }
    this.#prefix = prefix;
    const maxPayloadBytes = options.maxPayloadBytes ?? redisCapabilities.maxPayloadBytes;
    if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 1 || maxPayloadBytes > 512 * 1024 * 1024) {
      throw new InvalidOptionsError("maxPayloadBytes", `expected an integer from 1 to 536870912, got ${String(maxPayloadBytes)}`);
    }
    this.#dedupeWindowMs = parseDuration(options.dedupeWindow ?? redisCapabilities.dedupeWindowMs, "dedupeWindow");
    this.#requestTimeoutMs = positive(options.requestTimeout ?? "10s", "requestTimeout");
    const heartbeatMs = positive(options.heartbeatInterval ?? "5s", "heartbeatInterval");
    this.#heartbeatTimeoutMs = positive(options.heartbeatTimeout ?? "10s", "heartbeatTimeout");
    this.#maxBlockMs = positive(options.maxBlock ?? "5s", "maxBlock");
    this.maxBlockSeconds = this.#maxBlockMs / 1000;
    this.#maxReconnectDelayMs = positive(options.maxReconnectDelay ?? "2s", "maxReconnectDelay");
    this.capabilities = { ...redisCapabilities, maxPayloadBytes, dedupeWindowMs: this.#dedupeWindowMs };

    this.#redis = this.connect("command");
    this.#run = registerScripts(this.#redis);
    this.#redis.on("error", (error: unknown) => {
      this.#lastError = error;
    });
    this.#redis.on("close", () => {
      if (!this.#wasReady || this.#down || this.closed) return;
      this.#down = true;
      const error = this.#lastError === undefined ? undefined : serializeError(cleanCause(this.#lastError));
      this.events.emit("disconnected", error === undefined ? {} : { error });
    });
    this.#redis.on("ready", () => this.#ready());
    const o = this.#redis.options;
    if (!isLoopbackHost(String(o.host ?? "localhost")) && !o.password && !o.tls && !o.path) {
      // After the factory returned, so that listeners registered right away hear it.
      queueMicrotask(() =>
        this.events.emit("insecure-connection", {
          message: `[jobs] [redis] ${String(o.host)} is not on loopback and the connection has neither TLS nor a password: anyone on the network can read and forge jobs`,
        }),
      );
    }
    this.#heartbeat = setInterval(() => {
      this.#redis.ping().catch(() => {});
    }, heartbeatMs);
    this.#heartbeat.unref();
  }

  #ready(): void {
    const first = !this.#wasReady;
    this.#wasReady = true;
    this.#lastError = undefined;
    if (this.#down) {
      this.#down = false;
      this.events.emit("reconnected", {});
      for (const consumer of this.#consumers) consumer.kick();
    }
    if (!first) return;
    if (this.#options.checkServerConfig !== false) void this.#checkServerConfig();
  }

  async #checkServerConfig(): Promise<void> {
    let info: string;
    try {
      info = await this.#redis.info();
    } catch {
      return; // INFO may be denied by an ACL: nothing to check then.
    }
    const field = (name: string): string | undefined => new RegExp(`^${name}:(.*)$`, "m").exec(info)?.[1]?.trim();
    const policy = field("maxmemory_policy");
    if (policy !== undefined && policy !== "noeviction") {
      this.events.emit("config-warning", {
        message: `[jobs] [redis] maxmemory-policy is "${policy}": Redis may evict job keys under memory pressure, losing jobs; set it to "noeviction"`,
      });
    }
    if (field("aof_enabled") === "0") {
      this.events.emit("config-warning", {
        message:
          "[jobs] [redis] AOF is off (appendonly no): jobs accepted since the last snapshot are lost if Redis crashes; set appendonly yes (appendfsync everysec or always)",
      });
    }
  }

  /** Opens a connection with the adapter's safe settings: reconnect forever, detect dead links, resend unanswered commands. */
  connect(role: "command" | "blocking"): Redis {
    const safe: RedisOptions = {
      maxRetriesPerRequest: null,
      enableOfflineQueue: true,
      autoResendUnfulfilledCommands: true,
      // Any reply outstanding without a byte for this long: destroy the socket and reconnect.
      socketTimeout: role === "command" ? this.#heartbeatTimeoutMs : this.#maxBlockMs + this.#heartbeatTimeoutMs,
      connectTimeout: this.#heartbeatTimeoutMs,
      retryStrategy: (times: number) => Math.min(this.#maxReconnectDelayMs, 25 * 2 ** Math.min(times, 12)) + Math.floor(Math.random() * 25),
      disableClientInfo: true,
      // close() ends a connection after QUIT when it is live; one that is down has nothing left to
      // say, so it is destroyed soon instead of holding the process for ioredis's 2-s default.
      disconnectTimeout: 100,
      connectionName: `jobs-${role}`,
    };
    // Replies as arrays (RESP2 shapes), whatever protocol is negotiated.
    const shapes = { replyMapping: "legacy" } as const;
    const o = this.#options;
    let redis: Redis;
    if (o.client !== undefined) redis = o.client.duplicate({ ...o.connection, ...safe, ...shapes });
    else redis = new Redis(o.url ?? "redis://127.0.0.1:6379", { ...o.connection, ...safe, ...shapes });
    if (role === "blocking") {
      this.#blockers.add(redis);
      redis.on("error", () => {}); // reported through the command connection's events
      redis.on("end", () => this.#blockers.delete(redis));
    }
    return redis;
  }

  /** Runs a script; `timed` bounds the wait (the command itself may still run later). */
  run(name: Parameters<ScriptRunner>[0], keys: readonly string[], args: readonly (string | number)[], timed = false): Promise<unknown> {
    const call = this.#run(name, keys, args);
    if (!timed) return call;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RequestTimeout(`no reply within ${this.#requestTimeoutMs} ms`)), this.#requestTimeoutMs);
      // A bound on a wait never keeps the process alive: after close() during an outage, a settle
      // still waiting for its reply must not hold Node's exit for the rest of the timeout.
      timer.unref();
    });
    return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
  }

  #queue(name: string): QueueState {
    let q = this.#queues.get(name);
    if (q === undefined) {
      const keys = redisQueueKeys(name, this.#prefix);
      const [w0, w1, w2, w3, w4] = keys.waiting;
      const waiting = [w0, w1, w2, w3, w4] as string[];
      q = {
        name,
        keys,
        publishKeys: [keys.body, keys.delayed, keys.seen, keys.seq, keys.wake, ...waiting, keys.seenPrevious, keys.seenSince],
        fetchKeys: [keys.active, keys.body, keys.delayed, keys.wake, ...waiting],
        settleKeys: [keys.active, keys.body, keys.delayed, keys.wake, keys.seq, keys.dead, keys.deadRecords, ...waiting],
        inspectKeys: [keys.active, keys.delayed, keys.dead, keys.deadRecords, ...waiting],
        purgeKeys: [keys.body, keys.delayed, keys.dead, keys.deadRecords, keys.wake, ...waiting],
        publishMessages: [],
        publishWaiters: [],
        settleArgs: [],
        settleWaiters: [],
        consumers: new Set(),
      };
      this.#queues.set(name, q);
    }
    return q;
  }

  #ensureOpen(): void {
    if (this.closed) throw new BrokerClosedError("[jobs] [redis] broker is closed");
  }

  /**
   * Publishes go out at the end of the current tick (concurrent enqueues of one tick still share a
   * script call); settlements wait for the end of this turn of the event loop, so the acks of every
   * job that completed in it go out as one call per queue, followed by the fetch that refills.
   */
  #schedule(q: QueueState, soon: boolean): void {
    this.#dirty.add(q);
    if (soon) {
      if (this.#microFlush) return;
      this.#microFlush = true;
      queueMicrotask(() => {
        this.#microFlush = false;
        void this.#flush();
      });
    } else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        void this.#flush();
      });
    }
  }

  enqueueSettle(q: QueueState, op: (string | number)[], waiter: Waiter | undefined): void {
    for (const a of op) q.settleArgs.push(a);
    q.settleWaiters.push(waiter ?? { resolve: () => {}, reject: () => {} });
    this.#schedule(q, false);
  }

  wantFetch(consumer: RedisConsumer): void {
    this.#fetchWanted.add(consumer);
  }

  #flush(): Promise<unknown> {
    const sent: Promise<unknown>[] = [];
    for (const q of this.#dirty) {
      if (q.publishWaiters.length > 0) sent.push(this.#flushPublish(q));
      if (q.settleWaiters.length > 0) sent.push(this.#flushSettle(q));
    }
    this.#dirty.clear();
    // Fetch after the settlements, on the same connection: Redis runs them in that order.
    for (const consumer of this.#fetchWanted) consumer.kick();
    this.#fetchWanted.clear();
    return Promise.allSettled(sent);
  }

  #flushPublish(q: QueueState): Promise<void> {
    const messages = q.publishMessages;
    const waiters = q.publishWaiters;
    q.publishMessages = [];
    q.publishWaiters = [];
    return this.run("publish", q.publishKeys, publishArgs(this.#dedupeWindowMs, messages), true).then(
      (reply) => {
        const flags = reply as number[];
        let k = 0;
        for (const w of waiters) {
          for (const i of w.indexes) w.outcomes[i] = flags[k++] === 1 ? DUPLICATE : STORED;
          w.resolve(w.outcomes);
        }
      },
      (error: unknown) => {
        // A server error reply means the script did not run; anything else (timeout, lost connection) leaves it unknown.
        const failure: JobsError = isReplyError(error)
          ? new BrokerConnectionError(`[jobs] [redis] publish refused: ${describe(error)}`, { cause: cleanCause(error) })
          : new EnqueueOutcomeUnknownError(`[jobs] [redis] publish failed, the messages may or may not be stored: ${describe(error)}`, {
              cause: cleanCause(error),
            });
        for (const w of waiters) {
          for (const i of w.indexes) w.outcomes[i] = { ok: false, error: failure };
          w.resolve(w.outcomes);
        }
      },
    );
  }

  #flushSettle(q: QueueState): Promise<void> {
    const args = q.settleArgs;
    const waiters = q.settleWaiters;
    q.settleArgs = [];
    q.settleWaiters = [];
    return this.run("settle", q.settleKeys, args, true).then(
      (reply) => {
        const results = reply as number[];
        for (let i = 0; i < waiters.length; i++) (waiters[i] as Waiter).resolve(results[i] as number);
      },
      (error: unknown) => {
        const failure = new BrokerConnectionError(`[jobs] [redis] settlement failed: ${describe(error)}`, { cause: cleanCause(error) });
        for (const w of waiters) w.reject(failure);
      },
    );
  }

  publish(queue: string, messages: readonly OutgoingMessage[]): Promise<PublishOutcome[]> {
    if (this.closed) return Promise.reject(new BrokerClosedError("[jobs] [redis] broker is closed"));
    let q: QueueState;
    try {
      q = this.#queue(checkQueue(queue));
    } catch (error) {
      return Promise.reject(error);
    }
    const limit = this.capabilities.maxPayloadBytes;
    const outcomes: PublishOutcome[] = new Array(messages.length);
    const indexes: number[] = [];
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as OutgoingMessage;
      // Measured as string length ×3 first: exact UTF-8 counting is only needed near the limit.
      if (m.body.length * 3 > limit) {
        const size = Buffer.byteLength(m.body, "utf8");
        if (size > limit) {
          outcomes[i] = { ok: false, error: new PayloadTooLargeError(size, limit, "message") };
          continue;
        }
      }
      if (!(m.priority >= 0 && m.priority <= 4 && Number.isInteger(m.priority))) {
        outcomes[i] = { ok: false, error: new InvalidOptionsError("priority", `expected a level from 0 to 4, got ${String(m.priority)}`) };
        continue;
      }
      indexes.push(i);
      q.publishMessages.push(m);
    }
    if (indexes.length === 0) return Promise.resolve(outcomes);
    return new Promise((resolve) => {
      q.publishWaiters.push({ outcomes, indexes, resolve });
      this.#schedule(q, true);
    });
  }

  async consume(queue: string, options: ConsumeOptions, onDelivery: (delivery: Delivery) => void): Promise<Subscription> {
    this.#ensureOpen();
    if (!Number.isInteger(options?.prefetch) || options.prefetch < 1)
      throw new InvalidOptionsError("prefetch", "expected a positive integer");
    if (!(options.leaseMs > 0)) throw new InvalidOptionsError("leaseMs", "expected a positive number");
    if (typeof onDelivery !== "function") throw new InvalidOptionsError("onDelivery", "expected a function");
    const q = this.#queue(checkQueue(queue));
    const consumer = new RedisConsumer(this, q, options.prefetch, Math.ceil(options.leaseMs), onDelivery);
    this.#consumers.add(consumer);
    q.consumers.add(consumer);
    consumer.kick();
    return {
      stop: async () => {
        consumer.stop();
        q.consumers.delete(consumer);
      },
      pause: () => consumer.pause(),
      resume: () => consumer.resume(),
    };
  }

  async #inspect(queue: string, args: readonly (string | number)[]): Promise<unknown> {
    this.#ensureOpen();
    const q = this.#queue(checkQueue(queue));
    try {
      return await this.run("inspect", q.inspectKeys, args, true);
    } catch (error) {
      throw new BrokerConnectionError(`[jobs] [redis] ${String(args[0])} failed: ${describe(error)}`, { cause: cleanCause(error) });
    }
  }

  async counts(queue: string): Promise<QueueCounts> {
    const [waiting, delayed, active, dead] = (await this.#inspect(queue, ["counts"])) as number[];
    return { waiting: waiting ?? 0, delayed: delayed ?? 0, active: active ?? 0, dead: dead ?? 0 };
  }

  async listDeadLetters(queue: string, options: { readonly limit: number; readonly offset?: number }): Promise<DeadLetter[]> {
    const limit = options?.limit;
    const offset = options?.offset ?? 0;
    if (!Number.isInteger(limit) || limit < 0) throw new InvalidOptionsError("limit", "expected a non-negative integer");
    if (!Number.isInteger(offset) || offset < 0) throw new InvalidOptionsError("offset", "expected a non-negative integer");
    if (limit === 0) return [];
    const reply = (await this.#inspect(queue, ["list", offset, limit])) as string[];
    const out: DeadLetter[] = [];
    for (let i = 0; i < reply.length; i += 2) {
      try {
        const r = JSON.parse(reply[i + 1] as string) as DeadLetterRecord;
        out.push({ key: reply[i] as string, body: r.body, reason: r.reason, error: r.error, failedAt: r.failedAt });
      } catch {
        // A record someone wrote by hand: not ours to show.
      }
    }
    return out;
  }

  async removeDeadLetters(queue: string, keys: readonly string[]): Promise<number> {
    if (keys.length === 0) {
      this.#ensureOpen();
      return 0;
    }
    return Number(await this.#inspect(queue, ["remove", ...keys]));
  }

  async purge(queue: string): Promise<void> {
    this.#ensureOpen();
    const q = this.#queue(checkQueue(queue));
    try {
      // In chunks: one huge script would block Redis (and trip the dead-connection timeout).
      while ((await this.run("purge", q.purgeKeys, [PURGE_CHUNK], true)) === PURGE_CHUNK) {
        this.#ensureOpen();
      }
    } catch (error) {
      if (JobsError.isInstance(error)) throw error;
      throw new BrokerConnectionError(`[jobs] [redis] purge failed: ${describe(error)}`, { cause: cleanCause(error) });
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.closed = true;
    for (const consumer of this.#consumers) consumer.stop();
    const bounded = <T>(p: Promise<T>): Promise<unknown> =>
      Promise.race([p, new Promise((r) => setTimeout(r, this.#requestTimeoutMs).unref())]).catch(() => {});
    // With Redis unreachable there is nothing to wait for: leases expire and the messages come back by themselves.
    const live = this.#redis.status === "ready";
    // Fetches on their way come back and are released (consumer stopped); then every held delivery goes back too.
    if (live) await bounded(Promise.allSettled([...this.#consumers].flatMap((c) => [...c.fetching])));
    for (const consumer of this.#consumers) {
      for (const delivery of consumer.held) this.enqueueSettle(consumer.queue, ["l", delivery.member], undefined);
      consumer.held.clear();
    }
    this.#consumers.clear();
    this.#fetchWanted.clear();
    const flushed = this.#flush();
    if (live) await bounded(flushed);
    clearInterval(this.#heartbeat);
    for (const blocker of this.#blockers) blocker.disconnect();
    // QUIT only on a live connection: one still connecting (or down) would wait for the timeout.
    if (this.#redis.status === "ready") await bounded(this.#redis.quit());
    this.#redis.disconnect();
  }
}

/**
 * ARGV of publish.lua. A batch whose messages share priority, delay and dedupe (an `enqueueMany`
 * of one job, or concurrent single enqueues) sends those once and then only ids and bodies.
 */
function publishArgs(windowMs: number, messages: readonly OutgoingMessage[]): (string | number)[] {
  const first = messages[0] as OutgoingMessage;
  const delayOf = (m: OutgoingMessage): number => (m.delayMs > 0 ? Math.ceil(m.delayMs) : 0);
  const delay = delayOf(first);
  let uniform = true;
  for (const m of messages) {
    if (m.priority !== first.priority || m.dedupe !== first.dedupe || delayOf(m) !== delay) {
      uniform = false;
      break;
    }
  }
  if (uniform) {
    const args: (string | number)[] = [windowMs, "u", first.priority, delay, first.dedupe ? 1 : 0];
    for (const m of messages) args.push(m.id, m.body);
    return args;
  }
  const args: (string | number)[] = [windowMs, "m"];
  for (const m of messages) args.push(m.id, m.body, m.priority, delayOf(m), m.dedupe ? 1 : 0);
  return args;
}

function positive(value: Duration, field: string): number {
  const ms = parseDuration(value, field);
  if (!(ms > 0)) throw new InvalidOptionsError(field, "expected a positive duration");
  return ms;
}

const PURGE_CHUNK = 2_000;

const QUEUE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$/;

function checkQueue(queue: string): string {
  if (typeof queue !== "string" || !QUEUE.test(queue)) {
    throw new InvalidOptionsError("queue", `expected letters, digits, "_", ".", ":" or "-" (no "{" or "}"), got ${JSON.stringify(queue)}`);
  }
  return queue;
}

/** Creates a broker on Redis (ioredis): atomic Lua scripts for every move, one hash tag per queue. */
export function createRedisBroker(options: RedisBrokerOptions = {}): Broker {
  return new RedisBrokerImpl(options);
}
