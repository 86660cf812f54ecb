import { randomUUID } from "node:crypto";
import {
  type Broker,
  BrokerClosedError,
  BrokerConnectionError,
  EnqueueOutcomeUnknownError,
  InvalidOptionsError,
  type JobsError,
  PayloadTooLargeError,
  type QueueCounts,
  UnknownQueueError,
} from "@jobs/core";
import {
  type BrokerCapabilities,
  type BrokerEventMap,
  type ConsumeOptions,
  coalesceWrites,
  type DeadLetter,
  type DeadLetterRecord,
  type Delivery,
  Emitter,
  type OutgoingMessage,
  type PublishOutcome,
  redact,
  type Subscription,
} from "@jobs/core/adapter";
import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Options } from "amqplib";
import { Consumers } from "./internal/consumer.js";
import { COUNT_HEADER, DEAD_HEADER, toDeadLetter } from "./internal/messages.js";
import {
  declareDelays,
  declareLadder,
  declareWork,
  delayRoutingKey,
  ladderExchange,
  type QueueNames,
  queueNames,
  type WorkQueueKind,
} from "./internal/topology.js";
import { sanitized, serialize, withTimeout, wrap } from "./internal/util.js";
import { type RabbitMQBrokerOptions, resolveOptions } from "./options.js";

export { type RabbitMQBrokerOptions, rabbitmqCapabilities } from "./options.js";

const ACCEPTED: PublishOutcome = Object.freeze({ ok: true, duplicate: false });

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
    { cause: sanitized(error) },
  );
}

/**
 * amqplib writes every frame (each publish, each ack) to the socket on its own: one system call
 * and, mostly, one TCP segment per message. Core's `coalesceWrites` sends a turn's frames in one
 * write. Only on connections the adapter opened itself (the socket is amqplib's
 * `connection.stream`; left alone if that is not there).
 */
function coalesceModelWrites(model: ChannelModel): void {
  coalesceWrites((model as unknown as { connection?: { stream?: unknown } }).connection?.stream);
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
  readonly #levels: number;
  readonly #unitMs: number;
  readonly #declareTopology: boolean;
  readonly #consumers: Consumers;
  readonly #workQueue: WorkQueueKind;
  readonly #names = new Map<string, QueueNames>();
  /** The server's `consumer_timeout` in ms: as configured, or as RabbitMQ stated it when it closed a channel for it. */
  #consumerTimeoutMs: number;
  /** Queues (logical names) already warned about a job timeout above `consumer_timeout`. */
  readonly #timeoutWarned = new Set<string>();
  /** Whether the configured `consumerTimeout` was already reported as different from the server's. */
  #learnedTimeout = false;
  #link: Link | undefined;
  #waiters: { resolve: (link: Link) => void; reject: (error: Error) => void }[] = [];
  #connecting = false;
  #lastError: Error | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  #everConnected = false;

  constructor(options: RabbitMQBrokerOptions) {
    const o = resolveOptions(options);
    this.#given = o.given;
    this.#url = o.url;
    this.#socketOptions = o.socketOptions;
    this.#prefix = o.prefix;
    this.#requestTimeoutMs = o.requestTimeoutMs;
    this.#maxReconnectMs = o.maxReconnectMs;
    this.#levels = o.levels;
    this.#unitMs = o.unitMs;
    this.#declareTopology = o.declare;
    this.#workQueue = o.workQueue;
    this.#consumerTimeoutMs = o.consumerTimeoutMs;
    this.capabilities = o.capabilities;
    const broker = this;
    this.#consumers = new Consumers({
      get closed() {
        return broker.closed;
      },
      quorum: o.workQueue.type === "quorum",
      requestTimeoutMs: o.requestTimeoutMs,
      get rotateAfterMs() {
        return broker.#consumerTimeoutMs / 10;
      },
      openChannel: (names) => this.#consumerChannel(names),
      send: (names, body, priority, delayMs, count) => this.send(names, body, priority, delayMs, count),
      sendDead: (names, record) => this.sendDead(names, record),
      reportError: (error) => this.events.emit("error", { error: serialize(error) }),
    });
    if (o.insecure) {
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
        coalesceModelWrites(model);
      }
    } catch (error) {
      this.#lastError = error as Error;
      if (attempt === 0) this.events.emit("disconnected", { error: serialize(error) });
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
    this.#consumers.resume();
    if (reconnected || attempt > 0) this.events.emit("reconnected", {});
  }

  #lost(link: Link): void {
    if (link.dead) return;
    link.dead = true;
    if (this.#link === link) this.#link = undefined;
    this.#consumers.lost();
    if (this.closed) return;
    this.events.emit("disconnected", { error: serialize(this.#lastError ?? new Error("connection closed")) });
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
    return new BrokerConnectionError(`[jobs] [rabbitmq] not connected to RabbitMQ${why}`, { cause: sanitized(this.#lastError) });
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
          await declareWork(ch, names, this.#workQueue);
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
    const names = this.#namesOf(queue);
    this.#checkJobTimeout(queue, options.jobTimeoutMs);
    try {
      await this.#ready();
      return await this.#consumers.start(names, options, onDelivery);
    } catch (error) {
      // The first subscription must work (a missing queue with declare: false, refused arguments, no connection).
      if ((error as { code?: unknown })?.code === 404)
        throw new UnknownQueueError(queue, `[jobs] [rabbitmq] queue "${names.work}" does not exist`);
      throw wrap(error);
    }
  }

  /**
   * Warns (once per queue) when a job registered for it may run past `consumer_timeout`: RabbitMQ
   * would then close its channel and redeliver it while it still runs, so it would run twice.
   * Channel rotation spares the jobs beside it, not the long job itself.
   */
  #checkJobTimeout(queue: string, jobTimeoutMs: number | undefined): void {
    const limit = this.#consumerTimeoutMs;
    if (jobTimeoutMs === undefined || limit <= 0 || !(jobTimeoutMs > limit)) return;
    // One warning per logical queue, not per priority level (`<queue>__p<level>` with priority "none").
    const logical = this.capabilities.priority === "none" ? queue.replace(/__p[0-4]$/, "") : queue;
    if (this.#timeoutWarned.has(logical)) return;
    this.#timeoutWarned.add(logical);
    this.events.emit("config-warning", {
      message: `[jobs] [rabbitmq] queue "${logical}": a job timeout of ${jobTimeoutMs} ms exceeds RabbitMQ's consumer_timeout (${limit} ms, the consumerTimeout option): a job still running by then is redelivered when RabbitMQ closes its channel, and runs twice. Lower the job's timeout, or raise consumer_timeout in rabbitmq.conf and set consumerTimeout to match`,
    });
  }

  /**
   * RabbitMQ closed a consumer's channel for `consumer_timeout` and said its value: warn once if
   * it is not the configured one, and use it from now on (channel rotation, job timeout checks).
   */
  #consumerChannelError(error: Error): void {
    this.#lastError = error;
    const stated = /timed out\. Timeout value used: (\d+) ms/.exec(String(error?.message))?.[1];
    if (stated === undefined) return;
    const serverMs = Number(stated);
    if (serverMs === this.#consumerTimeoutMs) return;
    const configured = this.#consumerTimeoutMs;
    this.#consumerTimeoutMs = serverMs;
    if (this.#learnedTimeout) return;
    this.#learnedTimeout = true;
    this.#timeoutWarned.clear();
    this.events.emit("config-warning", {
      message: `[jobs] [rabbitmq] RabbitMQ closed a consumer's channel after its consumer_timeout of ${serverMs} ms, but the consumerTimeout option says ${configured === 0 ? "it has none" : `${configured} ms`}: set consumerTimeout to ${serverMs} ms (the adapter uses the server's value from now on)`,
    });
  }

  /** A consumer's channel on the current connection, its queue declared first. */
  async #consumerChannel(names: QueueNames): Promise<Channel | undefined> {
    const link = this.#link;
    if (link === undefined || link.dead) return undefined;
    await this.#declare(link, names, false);
    const channel = await withTimeout(link.model.createChannel(), this.#requestTimeoutMs, "open a channel");
    channel.on("error", (error: Error) => this.#consumerChannelError(error));
    return channel;
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
      const active = this.#consumers.active(names);
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
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    for (const w of this.#waiters.splice(0)) w.reject(new BrokerClosedError("[jobs] [rabbitmq] broker is closed"));
    const closed = await this.#consumers.close(this.#given !== undefined);
    const link = this.#link;
    this.#link = undefined;
    if (link === undefined) {
      closed(false);
      return;
    }
    link.dead = true;
    // Closing the connection (or, for a borrowed one, our channels) puts unsettled deliveries back in their queues.
    let clean = true;
    try {
      if (this.#given === undefined) await withTimeout(link.model.close(), this.#requestTimeoutMs, "close the connection");
      else {
        for (const ch of [link.pub, link.admin]) if (ch !== undefined) await (await ch).close().catch(() => {});
      }
    } catch {
      // Already gone: the broker requeues what the connection held.
      clean = false;
    }
    closed(clean);
  }
}

/** Creates a broker on RabbitMQ (amqplib): confirm channels, a TTL + dead-letter delay ladder, dead-letter queues, reconnects. */
export function createRabbitMQBroker(options: RabbitMQBrokerOptions): RabbitMQBroker {
  return new RabbitMQBrokerImpl(options);
}
