/**
 * The connection to RabbitMQ: connecting and reconnecting (amqplib does neither by itself), the
 * channels and declarations of each connection, request bounds, and native errors turned into
 * the adapter's.
 */
import {
  BrokerConnectionError,
  type BrokerEventMap,
  brokerAuthError,
  brokerClosedError,
  coalesceWrites,
  type Emitter,
  InvalidOptionsError,
  isAuthFailure,
  JobsError,
  notConnectedError,
  RequestTimeoutError,
  reconnectDelay,
  redact,
  redactedCause,
  redactedMessage,
  type SerializedError,
  warnInsecureConnection,
  withTimeout,
} from "@jobs/core/adapter";
import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from "amqplib";
import { declareDelays, declareLadder, declareWork, type QueueNames } from "./internal/topology.js";
import type { RabbitMQSettings } from "./options.js";

/** The first reconnect waits this long; later ones double up to `maxReconnectDelay`. */
const INITIAL_RECONNECT_MS = 100;

/** `request`, or a `BrokerConnectionError` saying what got no answer within `ms`. */
export function timed<T>(request: Promise<T>, ms: number, what: string): Promise<T> {
  return withTimeout(request, ms).catch((error: unknown) => {
    throw error instanceof RequestTimeoutError ? new BrokerConnectionError(`[jobs] [rabbitmq] ${what}: no answer within ${ms} ms`) : error;
  });
}

/** A `JobsError` as it is; anything else (amqplib's channel and socket errors) as a redacted `BrokerConnectionError`. */
export function wrap(error: unknown): Error {
  if (JobsError.isInstance(error)) return error;
  return new BrokerConnectionError(`[jobs] [rabbitmq] ${redactedMessage(error)}`, {
    cause: redactedCause(error),
    retryable: !isAuthFailure(error),
  });
}

/** An error as event data, redacted. */
export function serialize(error: unknown): SerializedError {
  const e = redactedCause(error);
  return { name: e.name, message: `[jobs] [rabbitmq] ${e.message}` };
}

/**
 * A declaration RabbitMQ refused with PRECONDITION_FAILED (406): an object of that name exists
 * with other arguments (queue type, priority, delivery limit, durability, ladder TTLs). Definite
 * and not retryable, unlike a connection error: the same options fail the same way.
 */
function declareError(error: unknown, names: QueueNames): unknown {
  if ((error as { code?: unknown })?.code !== 406) return error;
  const reason = /PRECONDITION_FAILED - ([^"]*)/.exec(String((error as Error)?.message))?.[1] ?? String((error as Error)?.message);
  return new InvalidOptionsError(
    "queue",
    `RabbitMQ refused to declare the objects of queue "${names.work}" (${redact(reason)}): one exists with other arguments than these options give it (queueType, priority, deliveryLimit, delayUnit, durable). Delete it (deleteQueue) or use another prefix`,
    { cause: redactedCause(error) },
  );
}

/** One open connection and what was declared on it. */
export interface Link {
  readonly model: ChannelModel;
  pub: Promise<Channel> | undefined;
  admin: Promise<Channel> | undefined;
  ladder: Promise<void> | undefined;
  readonly declared: Map<string, Promise<void>>;
  /** Queues whose declaration completed on this connection (the hot path skips the promise). */
  readonly ready: Set<string>;
  /** The confirm channel once open (the hot path skips the promise). */
  pubChannel: ConfirmChannel | undefined;
  /** Correlation ids of publishes RabbitMQ returned as unroutable (their confirm follows). */
  readonly returned: Set<string>;
  seq: number;
  dead: boolean;
}

/** The key of a queue's declaration in `Link.ready`: its work and dead queues, or with `delays` also its ladder. */
export function declaredKey(names: QueueNames, delays: boolean): string {
  return delays ? `${names.queue}\u0000delays` : names.queue;
}

/** What the connection tells the consumers. */
export interface ConnectionHooks {
  /** A connection is open (the first or a new one): consumers open channels on it. */
  connected(): void;
  /** The connection died, and every channel with it. */
  lost(): void;
}

type ConnectionOptions = Pick<
  RabbitMQSettings,
  | "given"
  | "url"
  | "socketOptions"
  | "prefix"
  | "host"
  | "connectTimeoutMs"
  | "requestTimeoutMs"
  | "maxReconnectMs"
  | "levels"
  | "unitMs"
  | "declare"
  | "workQueue"
  | "insecure"
>;

/** The adapter's one connection at a time: the current `Link`, reconnects forever with backoff, and `ready()` for callers during an outage. */
export class RabbitMQConnection {
  closed = false;
  /** The open connection, if any. */
  link: Link | undefined;
  readonly requestTimeoutMs: number;
  readonly #options: ConnectionOptions;
  readonly #events: Emitter<BrokerEventMap>;
  readonly #hooks: ConnectionHooks;
  #waiters: { resolve: (link: Link) => void; reject: (error: Error) => void }[] = [];
  #connecting = false;
  #lastError: Error | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #everConnected = false;

  constructor(options: ConnectionOptions, events: Emitter<BrokerEventMap>, hooks: ConnectionHooks) {
    this.#options = options;
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.#events = events;
    this.#hooks = hooks;
  }

  /** A connection given in the options: not closed by `close()`, not re-opened if it drops. */
  get borrowed(): boolean {
    return this.#options.given !== undefined;
  }

  /** Starts connecting (and warns about a connection without TLS to another host). */
  start(): void {
    if (this.#options.insecure)
      warnInsecureConnection(this.#events, "rabbitmq", "connecting to a non-loopback host without TLS (use amqps://)");
    this.#connect();
  }

  #connect(): void {
    if (this.#connecting || this.closed) return;
    this.#connecting = true;
    void this.#connectLoop(0);
  }

  async #connectLoop(attempt: number): Promise<void> {
    this.#reconnectTimer = undefined;
    if (this.closed) return;
    const given = this.#options.given;
    let model: ChannelModel;
    try {
      if (given !== undefined) {
        if (this.#everConnected) throw new Error("the connection given in options.client closed");
        model = given;
      } else {
        model = await timed(
          amqp.connect(this.#options.url as string, this.#options.socketOptions),
          this.#options.connectTimeoutMs,
          "connect",
        );
        // amqplib writes every frame on its own; the socket is `connection.stream` (left alone if absent).
        coalesceWrites((model as unknown as { connection?: { stream?: unknown } }).connection?.stream);
      }
    } catch (error) {
      this.#lastError = error as Error;
      if (attempt === 0) this.#events.emit("disconnected", { error: serialize(error) });
      // A refused login will be refused again: the calls waiting fail now, definitely and not
      // retryable; connecting goes on in the background (a user or permission may be added).
      if (!this.#everConnected && isAuthFailure(error)) for (const w of this.#waiters.splice(0)) w.reject(this.#connectionError());
      if (given !== undefined && this.#everConnected) {
        for (const w of this.#waiters.splice(0)) w.reject(this.#connectionError());
        this.#connecting = false;
        return;
      }
      const delay = reconnectDelay(attempt, { initialMs: INITIAL_RECONNECT_MS, maxMs: this.#options.maxReconnectMs });
      this.#reconnectTimer = setTimeout(() => void this.#connectLoop(attempt + 1), delay);
      this.#reconnectTimer.unref();
      return;
    }
    if (this.closed) {
      if (given === undefined) model.close().catch(() => {});
      return;
    }
    const link: Link = {
      model,
      pub: undefined,
      admin: undefined,
      ladder: undefined,
      declared: new Map(),
      ready: new Set(),
      pubChannel: undefined,
      returned: new Set(),
      seq: 0,
      dead: false,
    };
    model.on("error", (error: Error) => {
      this.#lastError = error;
    });
    model.on("close", () => this.#lost(link));
    this.link = link;
    this.#lastError = undefined;
    this.#connecting = false;
    const reconnected = this.#everConnected;
    this.#everConnected = true;
    for (const w of this.#waiters.splice(0)) w.resolve(link);
    this.#hooks.connected();
    if (reconnected || attempt > 0) this.#events.emit("reconnected", {});
  }

  #lost(link: Link): void {
    if (link.dead) return;
    link.dead = true;
    if (this.link === link) this.link = undefined;
    this.#hooks.lost();
    if (this.closed) return;
    this.#events.emit("disconnected", { error: serialize(this.#lastError ?? new Error("connection closed")) });
    this.#connect();
  }

  /**
   * The open connection, waiting for a reconnect up to the request timeout, or for the first
   * connection up to the connect timeout (at once a non-retryable error after a refused login).
   */
  ready(): Promise<Link> {
    if (this.closed) return Promise.reject(brokerClosedError("rabbitmq"));
    const link = this.link;
    if (link !== undefined) return Promise.resolve(link);
    if (!this.#everConnected && this.#lastError !== undefined && isAuthFailure(this.#lastError))
      return Promise.reject(this.#connectionError());
    return new Promise<Link>((resolve, reject) => {
      const waiter = {
        resolve: (l: Link) => {
          clearTimeout(timer);
          resolve(l);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(
        () => {
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          reject(this.#connectionError());
        },
        this.#everConnected ? this.requestTimeoutMs : this.#options.connectTimeoutMs,
      );
      this.#waiters.push(waiter);
    });
  }

  #connectionError(): BrokerConnectionError {
    const last = this.#lastError;
    if (!this.#everConnected) {
      if (last !== undefined && isAuthFailure(last)) return brokerAuthError("rabbitmq", this.#options.host, "connect", last);
      return notConnectedError("rabbitmq", this.#options.host, this.#options.connectTimeoutMs, last);
    }
    const why = last === undefined ? "" : `: ${redact(last.message)}`;
    return new BrokerConnectionError(`[jobs] [rabbitmq] not connected to RabbitMQ${why}`, {
      cause: last === undefined ? undefined : redactedCause(last),
    });
  }

  /** A channel that is re-opened lazily after it closes (a 404/406 closes only the channel). */
  async channel(link: Link, kind: "pub" | "admin"): Promise<Channel> {
    let pending = link[kind];
    if (pending === undefined) {
      pending = kind === "pub" ? link.model.createConfirmChannel() : link.model.createChannel();
      link[kind] = pending;
      pending.then(
        (ch) => {
          ch.on("error", (error: Error) => {
            this.#lastError = error;
          });
          ch.on("close", () => {
            if (link[kind] === pending) link[kind] = undefined;
            if (link.pubChannel === ch) link.pubChannel = undefined;
          });
          if (kind === "pub") {
            link.pubChannel = ch as ConfirmChannel;
            ch.on("return", (msg: ConsumeMessage) => {
              const id = msg.properties.correlationId;
              if (typeof id === "string") link.returned.add(id);
            });
          }
        },
        () => {
          if (link[kind] === pending) link[kind] = undefined;
        },
      );
    }
    return timed(pending, this.requestTimeoutMs, "open a channel");
  }

  /**
   * Declares the queue's objects once per connection (every declare is idempotent): its work and
   * dead queues, and with `delays` also its ladder, needed only by delayed messages and inspection.
   */
  declare(link: Link, names: QueueNames, delays: boolean): Promise<void> {
    if (!this.#options.declare) return Promise.resolve();
    const key = declaredKey(names, delays);
    let done = link.declared.get(key);
    if (done === undefined) {
      done = (async () => {
        const ch = await this.channel(link, "admin");
        if (delays) {
          await this.declare(link, names, false);
          link.ladder ??= declareLadder(ch, this.#options.prefix, this.#options.levels);
          await link.ladder;
          await declareDelays(ch, this.#options.prefix, names, this.#options.unitMs);
        } else {
          await declareWork(ch, names, this.#options.workQueue);
        }
        link.ready.add(key);
      })().catch((error: unknown) => {
        throw declareError(error, names);
      });
      link.declared.set(key, done);
      done.catch(() => {
        if (link.declared.get(key) === done) link.declared.delete(key);
        link.ready.delete(key);
        link.ladder = undefined;
      });
    }
    return timed(done, this.requestTimeoutMs, "declare queues");
  }

  /** Forgets what was declared for the queue (deleted, or returned as unroutable). */
  forget(link: Link | undefined, names: QueueNames): void {
    for (const key of [declaredKey(names, false), declaredKey(names, true)]) {
      link?.declared.delete(key);
      link?.ready.delete(key);
    }
  }

  /** A consumer's channel on the current connection, its queue declared first; undefined without a connection. */
  async consumerChannel(names: QueueNames, onError: (error: Error) => void): Promise<Channel | undefined> {
    const link = this.link;
    if (link === undefined || link.dead) return undefined;
    await this.declare(link, names, false);
    const channel = await timed(link.model.createChannel(), this.requestTimeoutMs, "open a channel");
    channel.on("error", (error: Error) => {
      this.#lastError = error;
      onError(error);
    });
    return channel;
  }

  /** No more connecting: pending waits reject with `BrokerClosedError`. */
  stop(): void {
    this.closed = true;
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    for (const w of this.#waiters.splice(0)) w.reject(brokerClosedError("rabbitmq"));
  }

  /**
   * Closes the connection (a borrowed one: only the adapter's channels), which puts unsettled
   * deliveries back in their queues. Resolves true if RabbitMQ answered the close.
   */
  async closeLink(): Promise<boolean> {
    const link = this.link;
    this.link = undefined;
    if (link === undefined) return false;
    link.dead = true;
    try {
      if (this.#options.given === undefined) await timed(link.model.close(), this.requestTimeoutMs, "close the connection");
      else {
        for (const ch of [link.pub, link.admin]) if (ch !== undefined) await (await ch).close().catch(() => {});
      }
    } catch {
      // Already gone: the broker requeues what the connection held.
      return false;
    }
    return true;
  }
}
