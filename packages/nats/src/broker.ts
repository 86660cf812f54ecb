/** `NatsAdapter`: the parts of the adapter wired together, and close(). */
import {
  type Broker,
  type BrokerCapabilities,
  type BrokerEventMap,
  brokerEvents,
  type ConsumeOptions,
  type DeadLetter,
  type Delivery,
  type Emitter,
  type OutgoingMessage,
  type PublishOutcome,
  type QueueCounts,
  type Subscription,
} from "@jobs/core/adapter";
import { NatsBrokerConnection } from "./connection.js";
import { NatsConsumers } from "./consumer.js";
import { NatsInspection } from "./inspection.js";
import { ensureStream, Subjects } from "./internal/topology.js";
import { type NatsBrokerOptions, resolveNatsOptions } from "./options.js";
import { NatsPublisher } from "./publisher.js";

/** The NATS JetStream broker: the Broker contract, nothing more (no members of its own). */
export interface NatsBroker extends Broker {}

export class NatsAdapter implements NatsBroker {
  readonly name: string = "nats";
  readonly capabilities: BrokerCapabilities;
  readonly #events: Emitter<BrokerEventMap>;
  readonly on: Broker["on"];
  readonly #connection: NatsBrokerConnection;
  readonly #publisher: NatsPublisher;
  readonly #consumers: NatsConsumers;
  readonly #inspection: NatsInspection;
  #closing: Promise<void> | undefined;

  constructor(options: NatsBrokerOptions) {
    const settings = resolveNatsOptions(options);
    this.#events = brokerEvents("nats", options.logger);
    this.on = this.#events.on;
    this.capabilities = settings.capabilities;
    const subjects = new Subjects(settings.prefix);
    const events = this.#events;
    const connection = new NatsBrokerConnection(settings, events, {
      attach: (nc) => this.#publisher.attach(nc),
      ensureStream: () => ensureStream(this.#connection.jsm, settings, events),
      lost: () => this.#publisher.lost(),
      restart: () => this.#consumers.restart(),
    });
    this.#connection = connection;
    this.#publisher = new NatsPublisher(connection, subjects, settings);
    this.#consumers = new NatsConsumers(connection, this.#publisher, subjects, events, settings);
    this.#inspection = new NatsInspection(connection, subjects, settings.stream);
    connection.start();
  }

  publish(queue: string, messages: readonly OutgoingMessage[]): Promise<PublishOutcome[]> {
    return this.#publisher.publish(queue, messages);
  }

  consume(queue: string, options: ConsumeOptions, onDelivery: (delivery: Delivery) => void): Promise<Subscription> {
    return this.#consumers.consume(queue, options, onDelivery);
  }

  counts(queue: string): Promise<QueueCounts> {
    return this.#inspection.counts(queue);
  }

  listDeadLetters(queue: string, options: { readonly limit: number; readonly offset?: number }): Promise<DeadLetter[]> {
    return this.#inspection.listDeadLetters(queue, options);
  }

  removeDeadLetters(queue: string, keys: readonly string[]): Promise<number> {
    return this.#inspection.removeDeadLetters(queue, keys);
  }

  purge(queue: string): Promise<void> {
    return this.#inspection.purge(queue);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /**
   * No more first-connect attempts, sweeps or pull requests; then (if a connection was made)
   * unsettled deliveries go back to their queues, sent publishes get their PubAck (bounded), and
   * the server confirms all that before a connection of our own closes.
   */
  async #close(): Promise<void> {
    this.#connection.shut();
    this.#publisher.stop();
    this.#consumers.stop();
    if (!this.#connection.opened) return;
    this.#consumers.handBack();
    await this.#publisher.close();
    await this.#connection.end();
  }
}
