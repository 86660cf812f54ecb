/** `RedisAdapter`: the parts of the adapter wired together, and close(). */
import {
  assertConsumeOptions,
  type Broker,
  type BrokerCapabilities,
  type BrokerEventMap,
  brokerEvents,
  type ConsumeOptions,
  type DeadLetter,
  type Delivery,
  type Emitter,
  InvalidOptionsError,
  JobsError,
  type OutgoingMessage,
  type PublishOutcome,
  type QueueCounts,
  type Subscription,
} from "@jobs/core/adapter";
import { closedError, RedisConnection } from "./connection.js";
import { type ConsumerHost, RedisConsumers, sendSettlements } from "./consumer.js";
import { fusionBase } from "./fusion.js";
import { RedisInspection } from "./inspection.js";
import { Batcher } from "./internal/batcher.js";
import { type RedisBrokerOptions, resolveRedisOptions } from "./options.js";
import { RedisPublisher } from "./publisher.js";

/** The Redis broker: the Broker contract, nothing more (no members of its own). */
export interface RedisBroker extends Broker {}

export class RedisAdapter implements RedisBroker {
  readonly name: string = "redis";
  readonly capabilities: BrokerCapabilities;
  readonly #events: Emitter<BrokerEventMap>;
  readonly on: Broker["on"];
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly #connection: RedisConnection;
  readonly #batcher: Batcher;
  readonly #publisher: RedisPublisher;
  readonly #consumers: RedisConsumers;
  readonly #inspection: RedisInspection;

  constructor(options: RedisBrokerOptions) {
    const settings = resolveRedisOptions(options);
    this.#events = brokerEvents("redis", options.logger);
    this.on = this.#events.on;
    this.capabilities = settings.capabilities;
    const adapter = this;
    this.#connection = new RedisConnection(settings, this.#events, {
      get closed() {
        return adapter.#closed;
      },
      reconnected: () => this.#consumers.kickAll(),
    });
    const connection = this.#connection;
    this.#batcher = new Batcher(settings.prefix, {
      publishes: (q) => this.#publisher.send(q),
      settlements: (q) => sendSettlements(connection, q),
    });
    this.#publisher = new RedisPublisher(this.#batcher, connection, settings.capabilities.maxPayloadBytes, settings.dedupeWindowMs);
    const consumerHost: ConsumerHost = {
      get closed() {
        return adapter.#closed;
      },
      maxBlockSeconds: settings.maxBlockMs / 1000,
      events: this.#events,
      scripts: connection,
      batches: this.#batcher,
      connect: (role) => connection.connect(role),
      drain: async (fetches) => {
        if (fetches.length > 0 && connection.live) await connection.bounded(Promise.allSettled(fetches));
      },
    };
    this.#consumers = new RedisConsumers(consumerHost);
    this.#inspection = new RedisInspection({
      ensureOpen: () => this.#ensureOpen(),
      queue: (name) => this.#batcher.queue(name),
      scripts: connection,
    });
  }

  #ensureOpen(): void {
    if (this.#closed) throw closedError();
  }

  /**
   * Before the first connection, a call waits for it (at most `connectTimeout`) and fails
   * definitely if it does not come: nothing is queued in ioredis's offline queue meanwhile, so a
   * failed call never runs later. After it, calls go out at once (queued while reconnecting).
   */
  async #connected(queue: string): Promise<void> {
    this.#ensureOpen();
    if (this.#connection.everConnected) return;
    this.#batcher.queue(queue); // a bad queue name fails before the wait
    await this.#connection.whenConnected();
    this.#ensureOpen();
  }

  publish(queue: string, messages: readonly OutgoingMessage[]): Promise<PublishOutcome[]> {
    if (this.#closed) return Promise.reject(closedError());
    if (!this.#connection.everConnected) {
      // No connection within connectTimeout: each message failed definitely (closed, a bad name: the call throws).
      return this.#connected(queue).then(
        () => this.#publisher.publish(queue, messages),
        (error: unknown) => {
          if (!JobsError.isInstance(error) || error.code !== "broker-connection") throw error;
          return messages.map((): PublishOutcome => ({ ok: false, error }));
        },
      );
    }
    return this.#publisher.publish(queue, messages);
  }

  async consume(queue: string, options: ConsumeOptions, onDelivery: (delivery: Delivery) => void): Promise<Subscription> {
    await this.#connected(queue);
    assertConsumeOptions(options);
    if (typeof onDelivery !== "function") throw new InvalidOptionsError("onDelivery", "expected a function");
    const records = options.records;
    const base = records === undefined ? undefined : await fusionBase(records.store, this.#connection.command);
    return this.#consumers.consume(
      queue,
      options,
      onDelivery,
      base === undefined || records === undefined ? undefined : { base, ttlMs: Math.ceil(records.ttlMs), worker: records.worker },
    );
  }

  async counts(queue: string): Promise<QueueCounts> {
    await this.#connected(queue);
    return this.#inspection.counts(queue);
  }

  async listDeadLetters(queue: string, options: { readonly limit: number; readonly offset?: number }): Promise<DeadLetter[]> {
    await this.#connected(queue);
    return this.#inspection.listDeadLetters(queue, options);
  }

  async removeDeadLetters(queue: string, keys: readonly string[]): Promise<number> {
    await this.#connected(queue);
    return this.#inspection.removeDeadLetters(queue, keys);
  }

  async purge(queue: string): Promise<void> {
    await this.#connected(queue);
    return this.#inspection.purge(queue);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    const fetching = this.#consumers.stopAll();
    // With Redis unreachable there is nothing to wait for: leases expire and the messages come back by themselves.
    const live = this.#connection.live;
    // Fetches on their way come back and are released (consumer stopped); then every held delivery goes back too.
    if (live) await this.#connection.bounded(Promise.allSettled(fetching));
    this.#consumers.releaseAll();
    this.#batcher.forgetFetches();
    const flushed = this.#batcher.flush();
    if (live) await this.#connection.bounded(flushed);
    await this.#connection.close();
  }
}
