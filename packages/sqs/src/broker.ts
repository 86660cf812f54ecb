/** `SqsAdapter`: the Broker contract on SQS, wiring the connection, publisher, consumers and inspection. */
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
import { sqsInstanceCapabilities } from "./capabilities.js";
import { SqsConnection } from "./connection.js";
import { SqsConsumers } from "./consumer.js";
import { SqsInspection } from "./inspection.js";
import { Batches } from "./internal/batches.js";
import { Queues } from "./internal/queues.js";
import { resolveSqsOptions, type SqsBrokerOptions } from "./options.js";
import { SqsPublisher } from "./publisher.js";

/**
 * A broker on Amazon SQS (or a compatible service). It adds no member to `Broker`: queues are
 * created on first use (or verified, `queues: "verify"`) and `close()` hands unsettled deliveries
 * back at once.
 */
export interface SqsBroker extends Broker {}

/** The Broker contract on Amazon SQS (or a compatible service). */
export class SqsAdapter implements SqsBroker {
  readonly name: string = "sqs";
  readonly capabilities: BrokerCapabilities;
  readonly events: Emitter<BrokerEventMap>;
  readonly on: Broker["on"];
  readonly #connection: SqsConnection;
  readonly #batches: Batches;
  readonly #publisher: SqsPublisher;
  readonly #consumers: SqsConsumers;
  readonly #inspection: SqsInspection;
  #closing: Promise<void> | undefined;

  constructor(options: SqsBrokerOptions) {
    const settings = resolveSqsOptions(options);
    this.events = brokerEvents("sqs", options.logger);
    this.on = this.events.on;
    this.capabilities = sqsInstanceCapabilities(settings);
    const connection = new SqsConnection(settings, this.events);
    const queues = new Queues(connection, settings, this.events);
    const batches = new Batches(connection, (url) => queues.forget(url), settings.lingerMs);
    const publisher = new SqsPublisher(connection, queues, batches, settings, this.capabilities.dedupeWindowMs);
    this.#connection = connection;
    this.#batches = batches;
    this.#publisher = publisher;
    this.#consumers = new SqsConsumers(connection, queues, batches, (queue, m) => publisher.entry(queue, m), this.events, settings);
    this.#inspection = new SqsInspection(connection, queues, batches, settings);
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
   * Stops the consumers (handing their deliveries back, and what their receives in flight take),
   * then sends pending batches, then destroys the clients it built.
   */
  async #close(): Promise<void> {
    this.#connection.closed = true;
    await Promise.all([this.#consumers.close(), this.#batches.drain()]);
    await this.#batches.drain();
    this.#connection.destroy();
  }
}
