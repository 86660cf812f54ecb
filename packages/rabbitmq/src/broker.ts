/** `RabbitMQAdapter`: the parts of the adapter wired together, and close(). */
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
import { RabbitMQConnection, serialize } from "./connection.js";
import { RabbitMQConsumers } from "./consumer.js";
import { RabbitMQInspection } from "./inspection.js";
import { ConsumerTimeout } from "./internal/consumer-timeout.js";
import { namesCache } from "./internal/topology.js";
import { type RabbitmqBrokerOptions, resolveRabbitMQOptions } from "./options.js";
import { RabbitMQPublisher } from "./publisher.js";

/** The RabbitMQ broker: the Broker contract plus queue removal. */
export interface RabbitmqBroker extends Broker {
  /** Deletes a physical queue with its dead letters and delay queues, messages included. */
  deleteQueue(queue: string): Promise<void>;
}

export class RabbitMQAdapter implements RabbitmqBroker {
  readonly name: string = "rabbitmq";
  readonly capabilities: BrokerCapabilities;
  readonly events: Emitter<BrokerEventMap>;
  readonly on: Broker["on"];
  readonly #connection: RabbitMQConnection;
  readonly #publisher: RabbitMQPublisher;
  readonly #consumers: RabbitMQConsumers;
  readonly #inspection: RabbitMQInspection;
  #closing: Promise<void> | undefined;

  constructor(options: RabbitmqBrokerOptions) {
    const o = resolveRabbitMQOptions(options);
    this.events = brokerEvents("rabbitmq", options.logger);
    this.on = this.events.on;
    this.capabilities = o.capabilities;
    const names = namesCache(o.prefix, o.levels);
    const timeout = new ConsumerTimeout(this.events, o.consumerTimeoutMs, o.capabilities.priority === "none");
    const connection = new RabbitMQConnection(o, this.events, {
      connected: () => this.#consumers.resume(),
      lost: () => this.#consumers.lost(),
    });
    const publisher = new RabbitMQPublisher(connection, {
      names,
      prefix: o.prefix,
      levels: o.levels,
      unitMs: o.unitMs,
      capabilities: o.capabilities,
    });
    this.#connection = connection;
    this.#publisher = publisher;
    this.#consumers = new RabbitMQConsumers({
      get closed() {
        return connection.closed;
      },
      quorum: o.workQueue.type === "quorum",
      requestTimeoutMs: o.requestTimeoutMs,
      get rotateAfterMs() {
        return timeout.rotateAfterMs;
      },
      names,
      ready: () => connection.ready(),
      checkJobTimeout: (queue, jobTimeoutMs) => timeout.checkJobTimeout(queue, jobTimeoutMs),
      openChannel: (queueNames) => connection.consumerChannel(queueNames, (error) => timeout.channelError(error)),
      send: (queueNames, body, priority, delayMs, count) => publisher.send(queueNames, body, priority, delayMs, count),
      sendDead: (queueNames, record) => publisher.sendDead(queueNames, record),
      reportError: (error) => this.events.emit("error", { error: serialize(error) }),
    });
    this.#inspection = new RabbitMQInspection(connection, names, (queueNames) => this.#consumers.active(queueNames));
    connection.start();
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#connection.closed;
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

  deleteQueue(queue: string): Promise<void> {
    return this.#inspection.deleteQueue(queue);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#connection.stop();
    const closed = await this.#consumers.close(this.#connection.borrowed);
    // Closing the connection (or, for a borrowed one, our channels) puts unsettled deliveries back in their queues.
    closed(await this.#connection.closeLink());
  }
}
