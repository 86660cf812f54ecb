import type {
  Broker,
  BrokerCapabilities,
  ConsumeOptions,
  DeadLetter,
  Delivery,
  OutgoingMessage,
  PublishOutcome,
  QueueCounts,
  Subscription,
} from "@jobs/core/adapter";
import { MemoryConnection } from "./connection.js";
import { consume } from "./consumer.js";
import { counts, type DrainOptions, drain, listDeadLetters, purge, removeDeadLetters } from "./inspection.js";
import { type MemoryBrokerOptions, resolveMemoryOptions } from "./options.js";
import { MemoryPublisher } from "./publisher.js";
import type { MemoryServer } from "./server.js";

/** The memory broker: the Broker contract plus test controls. */
export interface MemoryBroker extends Broker {
  /** The shared state. */
  readonly server: MemoryServer;
  /** Stop deliveries (on the whole server). */
  pause(): void;
  /** Resume deliveries. */
  resume(): void;
  /**
   * Resolves once nothing is ready or in flight and no delayed job is due within `delayedWithin`
   * (so a worker has run everything enqueued). Rejects after `timeout`.
   */
  drain(options?: DrainOptions): Promise<void>;
}

/** The parts wired to one connection to a server, plus the server's test controls. */
export class MemoryAdapter implements MemoryBroker {
  readonly name: string = "memory";
  readonly capabilities: BrokerCapabilities;
  readonly server: MemoryServer;
  readonly on: Broker["on"];
  readonly #connection: MemoryConnection;
  readonly #publisher: MemoryPublisher;

  constructor(options: MemoryBrokerOptions) {
    const resolved = resolveMemoryOptions(options);
    this.server = resolved.server;
    this.capabilities = resolved.capabilities;
    this.#connection = new MemoryConnection(this.server, options.logger);
    this.on = this.#connection.events.on;
    this.#publisher = new MemoryPublisher(this.#connection, this.capabilities);
    if (resolved.paused) this.server.pause();
  }

  publish(queue: string, messages: readonly OutgoingMessage[]): Promise<PublishOutcome[]> {
    return this.#publisher.publish(queue, messages);
  }

  consume(queue: string, options: ConsumeOptions, onDelivery: (delivery: Delivery) => void): Promise<Subscription> {
    return consume(this.#connection, queue, options, onDelivery);
  }

  counts(queue: string): Promise<QueueCounts> {
    return counts(this.#connection, queue);
  }

  listDeadLetters(queue: string, options: { readonly limit: number; readonly offset?: number }): Promise<DeadLetter[]> {
    return listDeadLetters(this.#connection, queue, options);
  }

  removeDeadLetters(queue: string, keys: readonly string[]): Promise<number> {
    return removeDeadLetters(this.#connection, queue, keys);
  }

  purge(queue: string): Promise<void> {
    return purge(this.#connection, queue);
  }

  pause(): void {
    this.server.pause();
  }

  resume(): void {
    this.server.resume();
  }

  drain(options?: DrainOptions): Promise<void> {
    return drain(this.server, options);
  }

  close(): Promise<void> {
    this.#connection.close();
    return Promise.resolve();
  }
}
