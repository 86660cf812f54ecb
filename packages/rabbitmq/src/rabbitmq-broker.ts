import { randomUUID } from "node:crypto";
import {
  type Broker,
  type BrokerCapabilities,
  BrokerClosedError,
  BrokerConnectionError,
  type BrokerEventMap,
  type ConsumeOptions,
  type DeadLetter,
  type DeadLetterRecord,
  type Delivery,
  type Duration,
  Emitter,
  EnqueueOutcomeUnknownError,
  InvalidOptionsError,
  isLoopbackHost,
  JobsError,
  LeaseLostError,
  type OutgoingMessage,
  PayloadTooLargeError,
  type PublishOutcome,
  parseDuration,
  type QueueCounts,
  redact,
  type SerializedError,
  type Subscription,
  UnknownQueueError,
} from "@jobs/core";
import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Options } from "amqplib";
import {
  assertPrefix,
  declareDelays,
  declareLadder,
  declareWork,
  delayRoutingKey,
  ladderExchange,
  type QueueNames,
  queueNames,
} from "./internal/topology.js";

/** Header carrying the delivery count across redeliveries (classic queues only flag `redelivered`). */
const COUNT_HEADER = "x-jobs-deliveries";
/** Header of a dead letter: its reason, error and time as JSON. */
const DEAD_HEADER = "x-jobs-dead";
const ACCEPTED: PublishOutcome = Object.freeze({ ok: true, duplicate: false });

/** The ladder holds up to `unit × (2^levels − 1)` ms; declared rounded down to whole minutes (or seconds), which core never exceeds. */
function ladderMaxDelay(unitMs: number, levels: number): number {
  const ms = unitMs * (2 ** levels - 1);
  const step = ms >= 60_000 ? 60_000 : ms >= 1_000 ? 1_000 : 1;
  return Math.floor(ms / step) * step;
}

/** What RabbitMQ does natively with the default options (an instance narrows it from its options). */
export const rabbitmqCapabilities: BrokerCapabilities = {
  priority: "native",
  maxDelayMs: ladderMaxDelay(100, 16),
  maxPayloadBytes: 8_388_608,
  dedupeWindowMs: 0,
  leaseExtension: true,
  durable: true,
  redeliverOnClose: true,
  timerResolutionMs: 100,
  exactActiveCount: false,
};

/** Options of `createRabbitMQBroker`. */
export interface RabbitMQBrokerOptions {
  /** Connection URL ("amqp://user:pass@host:5672/vhost", amqps for TLS) or amqplib connect options. Required unless `connection` is given. */
  readonly url?: string | Options.Connect;
  /** An open amqplib connection to use instead of `url`; it is not closed by `close()` and not re-opened if it drops. @default undefined */
  readonly connection?: ChannelModel;
  /** Socket options for amqplib (TLS `ca`, `cert`, …); never disables certificate checks itself. @default {} */
  readonly socketOptions?: Readonly<Record<string, unknown>>;
  /** Prefix of every queue and exchange, so a user can be limited to `^jobs\.` resources. @default "jobs." */
  readonly prefix?: string;
  /** Heartbeat interval: a dead peer is noticed after about two of them. Whole seconds. @default "10s" */
  readonly heartbeat?: Duration;
  /** Bound on every broker call (connect, declare, publish confirm); a publish without a verdict by then is ambiguous. @default "10s" */
  readonly requestTimeout?: Duration;
  /** Longest wait between reconnect attempts (attempts back off from 100 ms up to this, forever). @default "5s" */
  readonly maxReconnectDelay?: Duration;
  /**
   * The server's `consumer_timeout` (30 min by default in RabbitMQ 3.10+). A consumer moves new
   * deliveries to a fresh channel once its oldest unsettled one is older than a tenth of it, so a
   * long job that runs into the timeout takes no other job down with its channel. 0: the server
   * has none. @default "30m"
   */
  readonly consumerTimeout?: Duration;
  /** Number of delay-ladder levels; the longest native delay is `delayUnit × (2^levels − 1)`. @default 16 */
  readonly delayLevels?: number;
  /** Step of the delay ladder (delays are rounded up to it). @default "100ms" */
  readonly delayUnit?: Duration;
  /**
   * `"native"`: one classic queue per queue with `x-max-priority`. `"none"`: plain queues, and core
   * routes each priority level to its own physical queue (cheaper per message for the broker). @default "native"
   */
  readonly priority?: "native" | "none";
  /** Declare queues, exchanges and bindings on first use; false for a user without configure permission (an admin declares them). @default true */
  readonly declare?: boolean;
  /** Largest message body accepted, in bytes. @default 8388608 (8 MiB; RabbitMQ's own limit is 128 MiB) */
  readonly maxPayloadBytes?: number;
}

/** The RabbitMQ broker: the Broker contract plus queue removal. */
export interface RabbitMQBroker extends Broker {
  /** Deletes a physical queue with its dead letters and delay queues, messages included. */
  deleteQueue(queue: string): Promise<void>;
}

/** One open connection and what was declared on it. */
interface Link {
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

/** One channel a consumer receives on; retired channels only drain. */
interface Slot {
  readonly channel: Channel;
  readonly held: Set<RabbitDelivery>;
  tag: string | undefined;
  retired: boolean;
  dead: boolean;
  /** Its consumer's prefetch (re-sent as the ack barrier). */
  prefetch: number;
  /** The next ack barrier, shared by every ack sent before it goes out. */
  barrier: Promise<void> | undefined;
  /** Barriers sent and not yet answered (a drained channel closes only after them). */
  syncing: number;
  /** The last barrier created (the next one goes out once it is answered). */
  inflight: Promise<void> | undefined;
}

/**
 * Resolves once RabbitMQ has processed every ack sent on the channel so far. AMQP acks have no
 * reply, so a synchronous method sent after them (a `basic.qos` that changes nothing) proves they
 * landed: an ack that resolved is never followed by a redelivery. Acks of one event-loop turn share it:
 * it is sent from a microtask, so amqplib writes it in the same socket write as those acks.
 */
function barrier(slot: Slot): Promise<void> {
  if (slot.barrier === undefined) {
    let release!: () => void;
    let fail!: (error: Error) => void;
    slot.barrier = new Promise<void>((resolve, reject) => {
      release = resolve;
      fail = reject;
    });
    // At most one barrier in flight per channel: the acks sent meanwhile wait for the next one.
    const send = (): void => {
      slot.barrier = undefined;
      if (slot.dead) {
        fail(new LeaseLostError());
        return;
      }
      slot.syncing++;
      slot.channel.prefetch(slot.prefetch).then(
        () => {
          slot.syncing--;
          release();
        },
        () => {
          slot.syncing--;
          fail(new LeaseLostError("[jobs] [rabbitmq] the channel closed before the ack was confirmed; the message will be redelivered"));
        },
      );
    };
    if (slot.syncing === 0) queueMicrotask(send);
    else slot.inflight?.then(send, send);
    slot.inflight = slot.barrier;
  }
  return slot.barrier;
}

interface Consumer {
  readonly names: QueueNames;
  readonly prefetch: number;
  readonly leaseMs: number;
  readonly onDelivery: (delivery: Delivery) => void;
  readonly slots: Set<Slot>;
  current: Slot | undefined;
  opening: boolean;
  stopped: boolean;
}

class RabbitDelivery implements Delivery {
  readonly body: string;
  deadline: number;
  readonly receivedAt: number;
  /** `open` until settled, lost (lease, channel) or closed. */
  state: "open" | "settling" | "done" | "lost" = "open";

  constructor(
    private readonly broker: RabbitMQBrokerImpl,
    readonly consumer: Consumer,
    readonly slot: Slot,
    readonly msg: ConsumeMessage,
    readonly deliveryCount: number,
  ) {
    this.body = msg.content.toString("utf8");
    this.receivedAt = Date.now();
    this.deadline = this.receivedAt + consumer.leaseMs;
  }

  #check(): Error | undefined {
    if (this.broker.closed) return new BrokerClosedError("[jobs] [rabbitmq] broker is closed; the delivery went back to its queue");
    if (this.state !== "open" || this.slot.dead) return new LeaseLostError();
    return undefined;
  }

  /** Acks on the delivery's channel; the delivery is done whatever happens. */
  #finish(): Error | undefined {
    this.state = "done";
    this.slot.held.delete(this);
    if (this.slot.dead) return new LeaseLostError();
    try {
      this.slot.channel.ack(this.msg);
    } catch (error) {
      return new LeaseLostError(`[jobs] [rabbitmq] the delivery's channel closed before its ack: ${redact(String(error))}`);
    }
    return undefined;
  }

  /** Publishes first (confirmed), then acks: a crash in between duplicates, never loses. */
  async #replace(publish: () => Promise<void>): Promise<void> {
    const error = this.#check();
    if (error !== undefined) throw error;
    this.state = "settling";
    try {
      await publish();
    } catch (e) {
      if (this.state === "settling") this.state = "open";
      throw e;
    }
    if (this.state !== "settling") throw this.broker.closed ? new BrokerClosedError() : new LeaseLostError();
    const ackError = this.#finish();
    if (ackError !== undefined) throw ackError;
    await barrier(this.slot);
  }

  ack(): Promise<void> {
    const error = this.#check() ?? this.#finish();
    return error === undefined ? barrier(this.slot) : Promise.reject(error);
  }

  retry(next: OutgoingMessage): Promise<void> {
    return this.#replace(() => this.broker.send(this.consumer.names, next.body, next.priority, next.delayMs, undefined));
  }

  defer(delayMs: number): Promise<void> {
    const p = this.msg.properties;
    return this.#replace(() => this.broker.send(this.consumer.names, this.body, p.priority ?? 0, delayMs, undefined));
  }

  deadLetter(record: DeadLetterRecord): Promise<void> {
    return this.#replace(() => this.broker.sendDead(this.consumer.names, record));
  }

  extendLease(ms: number): Promise<void> {
    const error = this.#check();
    if (error !== undefined && !(this.state === "settling" && !this.broker.closed)) return Promise.reject(error);
    this.deadline = Date.now() + ms;
    return Promise.resolve();
  }
}

class RabbitMQBrokerImpl implements RabbitMQBroker {
  readonly name: string = "rabbitmq";
  readonly capabilities: BrokerCapabilities;
  readonly events: Emitter<BrokerEventMap> = new Emitter<BrokerEventMap>();
  readonly on: Broker["on"] = this.events.on;
  closed: boolean = false;
  readonly #url: string | Options.Connect | undefined;
  readonly #given: ChannelModel | undefined;
  readonly #socketOptions: Record<string, unknown>;
  readonly #prefix: string;
  readonly #requestTimeoutMs: number;
  readonly #maxReconnectMs: number;
  readonly #rotateAfterMs: number;
  readonly #levels: number;
  readonly #unitMs: number;
  readonly #declareTopology: boolean;
  readonly #consumers = new Set<Consumer>();
  readonly #names = new Map<string, QueueNames>();
  #link: Link | undefined;
  #waiters: { resolve: (link: Link) => void; reject: (error: Error) => void }[] = [];
  #connecting = false;
  #lastError: Error | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #tick: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  #everConnected = false;

  constructor(options: RabbitMQBrokerOptions) {
    if (typeof options !== "object" || options === null) throw new InvalidOptionsError("options", "expected an options object");
    this.#given = options.connection;
    if (this.#given === undefined && typeof options.url !== "string" && typeof options.url !== "object") {
      throw new InvalidOptionsError("url", "expected a connection URL (or options.connection)");
    }
    this.#prefix = options.prefix ?? "jobs.";
    assertPrefix(this.#prefix);
    const heartbeatS = Math.ceil(parseDuration(options.heartbeat ?? "10s", "heartbeat") / 1000);
    this.#requestTimeoutMs = parseDuration(options.requestTimeout ?? "10s", "requestTimeout");
    if (this.#requestTimeoutMs < 1) throw new InvalidOptionsError("requestTimeout", "expected at least 1 ms");
    this.#maxReconnectMs = Math.max(100, parseDuration(options.maxReconnectDelay ?? "5s", "maxReconnectDelay"));
    this.#rotateAfterMs = parseDuration(options.consumerTimeout ?? "30m", "consumerTimeout") / 10;
    this.#levels = options.delayLevels ?? 16;
    if (!Number.isInteger(this.#levels) || this.#levels < 1 || this.#levels > 32) {
      throw new InvalidOptionsError("delayLevels", "expected an integer from 1 to 32");
    }
    this.#declareTopology = options.declare ?? true;
    this.#unitMs = parseDuration(options.delayUnit ?? 100, "delayUnit");
    if (!Number.isInteger(this.#unitMs) || this.#unitMs < 1)
      throw new InvalidOptionsError("delayUnit", "expected a whole number of ms ≥ 1");
    const maxPayloadBytes = options.maxPayloadBytes ?? rabbitmqCapabilities.maxPayloadBytes;
    if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 1 || maxPayloadBytes > 134_217_728) {
      throw new InvalidOptionsError("maxPayloadBytes", "expected an integer from 1 to 134217728 (RabbitMQ's max_message_size)");
    }
    const maxDelayMs = ladderMaxDelay(this.#unitMs, this.#levels);
    const priority = options.priority ?? "native";
    if (priority !== "native" && priority !== "none") throw new InvalidOptionsError("priority", 'expected "native" or "none"');
    this.capabilities = { ...rabbitmqCapabilities, priority, maxPayloadBytes, maxDelayMs, timerResolutionMs: Math.max(1, this.#unitMs) };
    this.#socketOptions = { timeout: this.#requestTimeoutMs, ...(options.socketOptions ?? {}) };
    const url = options.url;
    if (typeof url === "string") {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        throw new InvalidOptionsError("url", `not a URL (rabbitmq): ${redact(url)}`);
      }
      if (!parsed.searchParams.has("heartbeat")) parsed.searchParams.set("heartbeat", String(heartbeatS));
      this.#url = parsed.toString();
    } else {
      this.#url = url === undefined ? undefined : { heartbeat: heartbeatS, ...url };
    }
    const host = typeof url === "string" ? new URL(url).hostname : (url?.hostname ?? "localhost");
    const secure = typeof url === "string" ? url.startsWith("amqps:") : url?.protocol === "amqps";
    if (this.#given === undefined && !secure && !isLoopbackHost(host)) {
      // After the caller had a chance to subscribe.
      setImmediate(() =>
        this.events.emit("insecure-connection", {
          message: "[jobs] [rabbitmq] connecting to a non-loopback host without TLS (use amqps://)",
        }),
      );
    }
    this.#connect();
  }

  // ---- connection -------------------------------------------------------------------------

  #connect(): void {
    if (this.#connecting || this.closed) return;
    this.#connecting = true;
    void this.#connectLoop(0);
  }

  async #connectLoop(attempt: number): Promise<void> {
    this.#reconnectTimer = undefined;
    if (this.closed) return;
    let model: ChannelModel;
    try {
      if (this.#given !== undefined) {
        if (this.#everConnected) throw new Error("the connection given in options.connection closed");
        model = this.#given;
      } else {
        model = await withTimeout(amqp.connect(this.#url as string, this.#socketOptions), this.#requestTimeoutMs, "connect");
      }
    } catch (error) {
      this.#lastError = error as Error;
      if (attempt === 0) this.events.emit("disconnected", { error: this.#serialize(error) });
      if (this.#given !== undefined && this.#everConnected) {
        for (const w of this.#waiters.splice(0)) w.reject(this.#connectionError());
        this.#connecting = false;
        return;
      }
      const delay = Math.min(this.#maxReconnectMs, 100 * 2 ** Math.min(attempt, 16)) * (0.8 + Math.random() * 0.2);
      this.#reconnectTimer = setTimeout(() => void this.#connectLoop(attempt + 1), delay);
      this.#reconnectTimer.unref();
      return;
    }
    if (this.closed) {
      if (this.#given === undefined) model.close().catch(() => {});
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
    this.#link = link;
    this.#connecting = false;
    const reconnected = this.#everConnected;
    this.#everConnected = true;
    for (const w of this.#waiters.splice(0)) w.resolve(link);
    for (const consumer of this.#consumers) void this.#open(consumer, link);
    if (reconnected || attempt > 0) this.events.emit("reconnected", {});
  }

  #lost(link: Link): void {
    if (link.dead) return;
    link.dead = true;
    if (this.#link === link) this.#link = undefined;
    for (const consumer of this.#consumers) {
      for (const slot of consumer.slots) this.#slotDead(consumer, slot);
    }
    if (this.closed) return;
    this.events.emit("disconnected", { error: this.#serialize(this.#lastError ?? new Error("connection closed")) });
    this.#connect();
  }

  /** The open connection, waiting for a reconnect up to the request timeout. */
  #ready(): Promise<Link> {
    if (this.closed) return Promise.reject(new BrokerClosedError("[jobs] [rabbitmq] broker is closed"));
    const link = this.#link;
    if (link !== undefined) return Promise.resolve(link);
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
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(this.#connectionError());
      }, this.#requestTimeoutMs);
      this.#waiters.push(waiter);
    });
  }

  #connectionError(): BrokerConnectionError {
    const why = this.#lastError === undefined ? "" : `: ${redact(this.#lastError.message)}`;
    return new BrokerConnectionError(`[jobs] [rabbitmq] not connected to RabbitMQ${why}`, { cause: this.#sanitized(this.#lastError) });
  }

  /** A copy of a native error with nothing but its redacted message and code (client errors may carry connection details). */
  #sanitized(error: unknown): Error | undefined {
    if (error === undefined) return undefined;
    const copy = new Error(redact(String((error as Error)?.message ?? error)));
    copy.name = String((error as Error)?.name ?? "Error");
    const code = (error as { code?: unknown })?.code;
    if (typeof code === "string" || typeof code === "number") (copy as Error & { code?: unknown }).code = code;
    return copy;
  }

  #serialize(error: unknown): SerializedError {
    const e = this.#sanitized(error) as Error;
    return { name: e.name, message: `[jobs] [rabbitmq] ${e.message}` };
  }

  /** A channel that is re-opened lazily after it closes (a 404/406 closes only the channel). */
  async #channel(link: Link, kind: "pub" | "admin"): Promise<Channel> {
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
    return withTimeout(pending, this.#requestTimeoutMs, "open a channel");
  }

  #namesOf(queue: string): QueueNames {
    let names = this.#names.get(queue);
    if (names === undefined) {
      names = queueNames(this.#prefix, queue, this.#levels);
      this.#names.set(queue, names);
    }
    return names;
  }

  /**
   * Declares the queue's objects once per connection (every declare is idempotent): its work and
   * dead queues, and with `delays` also its ladder, needed only by delayed messages and inspection.
   */
  #declare(link: Link, names: QueueNames, delays: boolean): Promise<void> {
    if (!this.#declareTopology) return Promise.resolve();
    const key = delays ? `${names.queue}\u0000delays` : names.queue;
    let done = link.declared.get(key);
    if (done === undefined) {
      done = (async () => {
        const ch = await this.#channel(link, "admin");
        if (delays) {
          await this.#declare(link, names, false);
          link.ladder ??= declareLadder(ch, this.#prefix, this.#levels);
          await link.ladder;
          await declareDelays(ch, this.#prefix, names, this.#unitMs);
        } else {
          await declareWork(ch, names, this.capabilities.priority === "native");
        }
        link.ready.add(key);
      })();
      link.declared.set(key, done);
      done.catch(() => {
        if (link.declared.get(key) === done) link.declared.delete(key);
        link.ready.delete(key);
        link.ladder = undefined;
      });
    }
    return withTimeout(done, this.#requestTimeoutMs, "declare queues");
  }

  /** Forgets what was declared for the queue (deleted, or returned as unroutable). */
  #forget(link: Link | undefined, names: QueueNames): void {
    for (const key of [names.queue, `${names.queue}\u0000delays`]) {
      link?.declared.delete(key);
      link?.ready.delete(key);
    }
  }

  // ---- publishing -------------------------------------------------------------------------

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<PublishOutcome[]> {
    if (this.closed) throw new BrokerClosedError("[jobs] [rabbitmq] broker is closed");
    const names = this.#namesOf(queue);
    let link: Link;
    let ch: ConfirmChannel;
    try {
      link = this.#link ?? (await this.#ready());
      const delays = messages.some((m) => m.delayMs > 0);
      if (!link.ready.has(delays ? `${names.queue}\u0000delays` : names.queue)) await this.#declare(link, names, delays);
      ch = link.pubChannel ?? ((await this.#channel(link, "pub")) as ConfirmChannel);
    } catch (error) {
      throw wrap(error);
    }
    const outcomes: PublishOutcome[] = new Array(messages.length);
    let remaining = messages.length;
    if (remaining === 0) return outcomes;
    return new Promise((resolve) => {
      const settle = (i: number, outcome: PublishOutcome): void => {
        if (outcomes[i] !== undefined) return;
        outcomes[i] = outcome;
        if (--remaining === 0) {
          clearTimeout(timer);
          resolve(outcomes);
        }
      };
      const timer = setTimeout(() => {
        const error = new EnqueueOutcomeUnknownError(`[jobs] [rabbitmq] no confirm from RabbitMQ within ${this.#requestTimeoutMs} ms`);
        for (let i = 0; i < messages.length; i++) settle(i, { ok: false, error });
      }, this.#requestTimeoutMs);
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i] as OutgoingMessage;
        if (m.body.length * 3 > this.capabilities.maxPayloadBytes) {
          const size = Buffer.byteLength(m.body, "utf8");
          if (size > this.capabilities.maxPayloadBytes) {
            settle(i, { ok: false, error: new PayloadTooLargeError(size, this.capabilities.maxPayloadBytes, "[jobs] [rabbitmq] message") });
            continue;
          }
        }
        this.#emit(link, ch, names, m.body, m.priority, m.delayMs, undefined, (error) =>
          settle(i, error === undefined ? ACCEPTED : { ok: false, error }),
        );
      }
    });
  }

  /** Publishes one message on the confirm channel; `done` gets the verdict (never called twice). */
  #emit(
    link: Link,
    ch: ConfirmChannel,
    names: QueueNames,
    body: string,
    priority: number,
    delayMs: number,
    count: number | undefined,
    done: (error: JobsError | undefined) => void,
  ): void {
    const correlationId = String(++link.seq);
    const units = delayMs > 0 ? Math.min(Math.ceil(delayMs / this.#unitMs), 2 ** this.#levels - 1) : 0;
    const options: Options.Publish = { persistent: true, mandatory: true, correlationId };
    if (priority > 0 && this.capabilities.priority === "native") options.priority = priority;
    if (count !== undefined) options.headers = { [COUNT_HEADER]: count };
    const callback = (err: unknown): void => {
      if (link.returned.delete(correlationId)) {
        // Deleted behind our back: declared again on the next publish (unless declaring is off).
        this.#forget(link, names);
        done(new UnknownQueueError(names.queue, `[jobs] [rabbitmq] queue "${names.work}" does not exist (message returned as unroutable)`));
      } else if (err === null || err === undefined) done(undefined);
      else
        done(new EnqueueOutcomeUnknownError(`[jobs] [rabbitmq] publish not confirmed: ${redact(String((err as Error)?.message ?? err))}`));
    };
    try {
      if (units === 0) ch.publish("", names.work, Buffer.from(body, "utf8"), options, callback);
      else
        ch.publish(
          ladderExchange(this.#prefix, this.#levels - 1),
          delayRoutingKey(units, this.#levels, names.queue),
          Buffer.from(body, "utf8"),
          options,
          callback,
        );
    } catch (error) {
      // Nothing left the process: amqplib refuses to write on a closed channel.
      done(new BrokerConnectionError(`[jobs] [rabbitmq] cannot publish: ${redact(String((error as Error)?.message ?? error))}`));
    }
  }

  async #publisher(names: QueueNames, delays: boolean): Promise<[Link, ConfirmChannel]> {
    try {
      const link = this.#link ?? (await this.#ready());
      if (!link.ready.has(delays ? `${names.queue}\u0000delays` : names.queue)) await this.#declare(link, names, delays);
      return [link, link.pubChannel ?? ((await this.#channel(link, "pub")) as ConfirmChannel)];
    } catch (error) {
      throw wrap(error);
    }
  }

  /** Publishes one message (confirmed) for a settlement. */
  async send(names: QueueNames, body: string, priority: number, delayMs: number, count: number | undefined): Promise<void> {
    const [link, ch] = await this.#publisher(names, delayMs > 0);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new EnqueueOutcomeUnknownError(`[jobs] [rabbitmq] no confirm within ${this.#requestTimeoutMs} ms`)),
        this.#requestTimeoutMs,
      );
      this.#emit(link, ch, names, body, priority, delayMs, count, (error) => {
        clearTimeout(timer);
        if (error === undefined) resolve();
        else reject(error);
      });
    });
  }

  /** Stores a dead letter (confirmed). */
  async sendDead(names: QueueNames, record: DeadLetterRecord): Promise<void> {
    const [, ch] = await this.#publisher(names, false);
    const meta = JSON.stringify({ reason: record.reason, error: record.error, failedAt: record.failedAt });
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        ch.publish(
          "",
          names.dead,
          Buffer.from(record.body, "utf8"),
          { persistent: true, mandatory: true, messageId: randomUUID(), headers: { [DEAD_HEADER]: meta } },
          (err: unknown) =>
            err === null || err === undefined
              ? resolve()
              : reject(new EnqueueOutcomeUnknownError(`[jobs] [rabbitmq] dead letter not confirmed: ${redact(String(err))}`)),
        );
      }),
      this.#requestTimeoutMs,
      "store a dead letter",
    );
  }

  // ---- consuming --------------------------------------------------------------------------

  async consume(queue: string, options: ConsumeOptions, onDelivery: (delivery: Delivery) => void): Promise<Subscription> {
    if (this.closed) throw new BrokerClosedError("[jobs] [rabbitmq] broker is closed");
    if (!Number.isInteger(options.prefetch) || options.prefetch < 1 || options.prefetch > 65_535) {
      throw new InvalidOptionsError("prefetch", "expected an integer from 1 to 65535");
    }
    if (!(options.leaseMs > 0)) throw new InvalidOptionsError("leaseMs", "expected a positive number");
    const consumer: Consumer = {
      names: this.#namesOf(queue),
      prefetch: options.prefetch,
      leaseMs: options.leaseMs,
      onDelivery,
      slots: new Set(),
      current: undefined,
      opening: false,
      stopped: false,
    };
    this.#consumers.add(consumer);
    this.#armTick();
    let error: unknown;
    try {
      error = await this.#open(consumer, await this.#ready());
    } catch (e) {
      error = e;
    }
    if (error !== undefined) {
      // The first subscription must work (a missing queue with declare: false, refused arguments, no connection).
      this.#consumers.delete(consumer);
      if ((error as { code?: unknown })?.code === 404)
        throw new UnknownQueueError(queue, `[jobs] [rabbitmq] queue "${consumer.names.work}" does not exist`);
      throw wrap(error);
    }
    return {
      stop: async () => {
        if (consumer.stopped) return;
        consumer.stopped = true;
        this.#consumers.delete(consumer);
        // Its retired channels still drain: the tick keeps expiring their leases and closes them when empty.
        this.#stopped.add(consumer);
        const slot = consumer.current;
        consumer.current = undefined;
        if (slot !== undefined) await this.#retire(slot);
      },
    };
  }

  /** Opens the consumer's current channel: prefetch minus what retired channels still hold. */
  /** Resolves with the error if the channel or consumer could not be opened (the tick tries again). */
  async #open(consumer: Consumer, link: Link | undefined = this.#link): Promise<unknown> {
    if (link === undefined || link.dead || consumer.stopped || consumer.current !== undefined || consumer.opening || this.closed) return;
    let held = 0;
    for (const slot of consumer.slots) held += slot.held.size;
    if (held >= consumer.prefetch) return;
    consumer.opening = true;
    try {
      await this.#declare(link, consumer.names, false);
      const channel = await withTimeout(link.model.createChannel(), this.#requestTimeoutMs, "open a channel");
      const slot: Slot = {
        channel,
        held: new Set(),
        tag: undefined,
        retired: false,
        dead: false,
        prefetch: consumer.prefetch - held,
        barrier: undefined,
        syncing: 0,
        inflight: undefined,
      };
      channel.on("error", (error: Error) => {
        this.#lastError = error;
      });
      channel.on("close", () => this.#slotDead(consumer, slot));
      consumer.slots.add(slot);
      await channel.prefetch(slot.prefetch);
      const { consumerTag } = await channel.consume(consumer.names.work, (msg) => this.#receive(consumer, slot, msg), { noAck: false });
      slot.tag = consumerTag;
      if (consumer.stopped || this.closed) await this.#retire(slot);
      else consumer.current = slot;
    } catch (error) {
      this.events.emit("error", { error: this.#serialize(error) });
      return error;
    } finally {
      consumer.opening = false;
    }
    return undefined;
  }

  #receive(consumer: Consumer, slot: Slot, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // Cancelled by the server (queue deleted): the tick opens a new channel, declaring it again.
      if (consumer.current === slot) consumer.current = undefined;
      slot.retired = true;
      return;
    }
    if (slot.dead) return;
    if (consumer.stopped) {
      slot.channel.nack(msg, false, true);
      return;
    }
    const headers = msg.properties.headers;
    const prior = typeof headers?.[COUNT_HEADER] === "number" ? (headers[COUNT_HEADER] as number) : 1;
    if (msg.fields.redelivered) {
      // Classic queues only flag a redelivery: republish it with its count + 1, then ack this copy.
      const p = msg.properties;
      this.send(consumer.names, msg.content.toString("utf8"), p.priority ?? 0, 0, prior + 1).then(
        () => {
          if (!slot.dead) slot.channel.ack(msg);
        },
        (error: unknown) => {
          this.events.emit("error", { error: this.#serialize(error) });
          if (!slot.dead) slot.channel.nack(msg, false, true);
        },
      );
      return;
    }
    const delivery = new RabbitDelivery(this, consumer, slot, msg, prior);
    slot.held.add(delivery);
    try {
      consumer.onDelivery(delivery);
    } catch (error) {
      this.events.emit("error", { error: this.#serialize(error) });
    }
  }

  #slotDead(consumer: Consumer, slot: Slot): void {
    if (slot.dead) return;
    slot.dead = true;
    consumer.slots.delete(slot);
    for (const d of slot.held) if (d.state === "open" || d.state === "settling") d.state = "lost";
    slot.held.clear();
    if (consumer.current === slot) consumer.current = undefined;
  }

  async #retire(slot: Slot): Promise<void> {
    if (slot.retired || slot.dead) return;
    slot.retired = true;
    try {
      if (slot.tag !== undefined) await withTimeout(slot.channel.cancel(slot.tag), this.#requestTimeoutMs, "cancel a consumer");
    } catch {
      // The channel is going away anyway; its deliveries go back to the queue.
    }
  }

  #armTick(): void {
    if (this.#tick !== undefined) return;
    let shortest = Number.POSITIVE_INFINITY;
    for (const c of this.#consumers) shortest = Math.min(shortest, c.leaseMs);
    const period = Math.min(250, Math.max(5, Math.floor(shortest / 10)));
    this.#tick = setInterval(() => this.#onTick(), period);
    this.#tick.unref();
  }

  /** Expires leases, rotates channels that hold an old delivery, closes drained ones, re-opens consumers. */
  #onTick(): void {
    const now = Date.now();
    for (const consumer of this.#consumers) this.#tickConsumer(consumer, now);
    for (const consumer of this.#stopped) this.#tickConsumer(consumer, now);
  }

  readonly #stopped = new Set<Consumer>();

  #tickConsumer(consumer: Consumer, now: number): void {
    for (const slot of consumer.slots) {
      for (const d of slot.held) {
        if (d.state !== "open" || d.deadline > now) continue;
        // Lease expired: back to the queue (it returns flagged `redelivered`, so counted).
        d.state = "lost";
        slot.held.delete(d);
        if (!slot.dead) slot.channel.nack(d.msg, false, true);
      }
      if (slot === consumer.current && this.#rotateAfterMs > 0) {
        const oldest = slot.held.values().next().value as RabbitDelivery | undefined;
        if (oldest !== undefined && now - oldest.receivedAt > this.#rotateAfterMs) {
          consumer.current = undefined;
          void this.#retire(slot);
        }
      }
      if (slot.retired && slot.held.size === 0 && !slot.dead && slot.barrier === undefined && slot.syncing === 0) {
        slot.dead = true;
        consumer.slots.delete(slot);
        slot.channel.close().catch(() => {});
      }
    }
    if (consumer.stopped) {
      if (consumer.slots.size === 0) this.#stopped.delete(consumer);
    } else if (consumer.current === undefined) void this.#open(consumer);
  }

  // ---- inspection -------------------------------------------------------------------------

  async #admin<T>(queue: string, fn: (ch: Channel, names: QueueNames) => Promise<T>, declare = true): Promise<T> {
    if (this.closed) throw new BrokerClosedError("[jobs] [rabbitmq] broker is closed");
    const names = this.#namesOf(queue);
    try {
      const link = await this.#ready();
      if (declare) await this.#declare(link, names, true);
      return await withTimeout(fn(await this.#channel(link, "admin"), names), this.#requestTimeoutMs, "inspect a queue");
    } catch (error) {
      if ((error as { code?: unknown })?.code === 404) {
        throw new UnknownQueueError(queue, `[jobs] [rabbitmq] queue "${names.work}" (or one of its delay or dead queues) does not exist`);
      }
      throw wrap(error);
    }
  }

  counts(queue: string): Promise<QueueCounts> {
    return this.#admin(queue, async (ch, names) => {
      const waiting = (await ch.checkQueue(names.work)).messageCount;
      const dead = (await ch.checkQueue(names.dead)).messageCount;
      let delayed = 0;
      for (const d of names.delays) delayed += (await ch.checkQueue(d)).messageCount;
      // AMQP reports ready messages only: unsettled deliveries are known for this instance's consumers.
      let active = 0;
      for (const c of [...this.#consumers, ...this.#stopped]) {
        if (c.names === names) for (const slot of c.slots) active += slot.held.size;
      }
      return { waiting, delayed, active, dead };
    });
  }

  /** Reads the dead letters on a private channel without acking them; closing it puts them back in order. */
  async #browseDead<T>(queue: string, fn: (ch: Channel, letters: { msg: ConsumeMessage; letter: DeadLetter }[]) => T): Promise<T> {
    return this.#admin(queue, async (_admin, names) => {
      const link = await this.#ready();
      const ch = await link.model.createChannel();
      ch.on("error", () => {});
      try {
        const letters: { msg: ConsumeMessage; letter: DeadLetter }[] = [];
        for (;;) {
          const msg = await ch.get(names.dead, { noAck: false });
          if (msg === false) break;
          letters.push({ msg: msg as unknown as ConsumeMessage, letter: toDeadLetter(msg as unknown as ConsumeMessage) });
        }
        return fn(ch, letters);
      } finally {
        await ch.close().catch(() => {});
      }
    });
  }

  listDeadLetters(queue: string, options: { readonly limit: number; readonly offset?: number }): Promise<DeadLetter[]> {
    const offset = options.offset ?? 0;
    return this.#browseDead(queue, (_ch, letters) => letters.slice(offset, offset + options.limit).map((l) => l.letter));
  }

  removeDeadLetters(queue: string, keys: readonly string[]): Promise<number> {
    const remove = new Set(keys);
    return this.#browseDead(queue, (ch, letters) => {
      let removed = 0;
      for (const { msg, letter } of letters) {
        if (!remove.has(letter.key)) continue;
        ch.ack(msg);
        removed++;
      }
      return removed;
    });
  }

  purge(queue: string): Promise<void> {
    return this.#admin(queue, async (ch, names) => {
      for (const q of [...names.delays, names.work, names.dead]) await ch.purgeQueue(q);
    });
  }

  deleteQueue(queue: string): Promise<void> {
    return this.#admin(
      queue,
      async (ch, names) => {
        for (const q of [names.work, names.dead, ...names.delays]) await ch.deleteQueue(q);
        this.#forget(this.#link, names);
      },
      false,
    );
  }

  // ---- close ------------------------------------------------------------------------------

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.closed = true;
    if (this.#tick !== undefined) clearInterval(this.#tick);
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    for (const w of this.#waiters.splice(0)) w.reject(new BrokerClosedError("[jobs] [rabbitmq] broker is closed"));
    for (const consumer of this.#consumers) {
      consumer.stopped = true;
      for (const slot of consumer.slots) this.#slotDead(consumer, slot);
    }
    this.#consumers.clear();
    const link = this.#link;
    this.#link = undefined;
    if (link === undefined) return;
    link.dead = true;
    // Closing the connection (or, for a borrowed one, our channels) puts unsettled deliveries back in their queues.
    try {
      if (this.#given === undefined) await withTimeout(link.model.close(), this.#requestTimeoutMs, "close the connection");
      else {
        for (const ch of [link.pub, link.admin]) if (ch !== undefined) await (await ch).close().catch(() => {});
      }
    } catch {
      // Already gone: the broker requeues what the connection held.
    }
  }
}

function toDeadLetter(msg: ConsumeMessage): DeadLetter {
  let meta: Partial<DeadLetterRecord> = {};
  try {
    meta = JSON.parse(String(msg.properties.headers?.[DEAD_HEADER] ?? "{}")) as Partial<DeadLetterRecord>;
  } catch {
    // A message someone else put in the dead-letter queue: listed with what it has.
  }
  return {
    key: String(msg.properties.messageId ?? msg.fields.deliveryTag),
    body: msg.content.toString("utf8"),
    reason: meta.reason ?? "undecodable",
    error: meta.error ?? { name: "Error", message: "no failure recorded" },
    failedAt: meta.failedAt ?? 0,
  };
}

/** A `JobsError` as it is; anything else (amqplib's channel and socket errors) as a redacted `BrokerConnectionError`. */
function wrap(error: unknown): Error {
  if (JobsError.isInstance(error)) return error;
  const message = redact(String((error as Error)?.message ?? error));
  return new BrokerConnectionError(`[jobs] [rabbitmq] ${message}`, { cause: new Error(message) });
}

/** Rejects with a `BrokerConnectionError` if `promise` takes longer than `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new BrokerConnectionError(`[jobs] [rabbitmq] ${what}: no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Creates a broker on RabbitMQ (amqplib): confirm channels, a TTL + dead-letter delay ladder, dead-letter queues, reconnects. */
export function createRabbitMQBroker(options: RabbitMQBrokerOptions): RabbitMQBroker {
  return new RabbitMQBrokerImpl(options);
}
