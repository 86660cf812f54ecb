import {
  assertConsumeOptions,
  BrokerClosedError,
  brokerClosedError,
  type ConsumeOptions,
  type DeadLetterRecord,
  type Delivery,
  LeaseLostError,
  type LocalEnvelope,
  type OutgoingMessage,
  redactedMessage,
  type Subscription,
} from "@jobs/core/adapter";
import type { MemoryConnection } from "./connection.js";
import type { Lease, LeaseClass, MemoryQueue, Message, QueueConsumer } from "./internal/queue.js";

/** consume(): subscribes `onDelivery` to a queue of the connection's server. Rejects (never throws) on bad options. */
export function consume(
  connection: MemoryConnection,
  queueName: string,
  options: ConsumeOptions,
  onDelivery: (delivery: Delivery) => void,
): Promise<Subscription> {
  if (connection.closed) return Promise.reject(brokerClosedError("memory"));
  try {
    assertConsumeOptions(options);
  } catch (error) {
    return Promise.reject(error);
  }
  const queue = connection.server.queue(queueName);
  const consumer = new MemoryConsumer(connection, queue, options, onDelivery);
  queue.consumers.push(consumer);
  queue.scheduleDispatch();
  return Promise.resolve(consumer);
}

/** A subscriber of one queue: the queue's view of it and the caller's Subscription. */
class MemoryConsumer implements QueueConsumer, Subscription {
  readonly prefetch: number;
  readonly leaseMs: number;
  readonly Delivery: LeaseClass = MemoryDelivery;
  unsettled: number = 0;
  paused: boolean = false;
  #stopped = false;

  constructor(
    readonly connection: MemoryConnection,
    readonly queue: MemoryQueue,
    options: ConsumeOptions,
    readonly onDelivery: (delivery: Delivery) => void,
  ) {
    this.prefetch = options.prefetch;
    this.leaseMs = options.leaseMs;
  }

  deliveryFailed(error: unknown): void {
    this.connection.events.emit("error", { error: { name: "ConsumerError", message: redactedMessage(error) } });
  }

  stop(): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      this.queue.consumers = this.queue.consumers.filter((c) => c !== this);
    }
    return Promise.resolve();
  }

  // Deliveries are handed out synchronously: nothing is ever on its way when a pause returns.
  pause(): Promise<void> {
    this.paused = true;
    return Promise.resolve();
  }

  resume(): void {
    this.paused = false;
    this.queue.scheduleDispatch();
  }
}

/** One delivery, and the queue's record of its lease (one object per delivery instead of two). */
class MemoryDelivery implements Lease {
  readonly body: string;
  readonly deliveryCount: number;
  readonly local: LocalEnvelope | undefined;

  constructor(
    private readonly queue: MemoryQueue,
    readonly message: Message,
    readonly consumer: QueueConsumer,
    public deadline: number,
  ) {
    this.body = message.body;
    this.deliveryCount = message.deliveryCount;
    this.local = message.local;
  }

  /** Still leased to this consumer. A lease past its deadline is lost even before the reaper ran: it goes back now. */
  #held(): boolean {
    if (!this.queue.active.has(this)) return false;
    if (this.deadline > Date.now()) return true;
    this.queue.release(this, true);
    return false;
  }

  #settle(): Error | undefined {
    if (this.consumer.connection.closed) {
      return brokerClosedError("memory", "the delivery went back to its queue");
    }
    if (!this.#held()) return new LeaseLostError();
    this.queue.release(this, false);
    return undefined;
  }

  ack(): Promise<void> {
    const error = this.#settle();
    return error === undefined ? Promise.resolve() : Promise.reject(error);
  }

  retry(next: OutgoingMessage): Promise<void> {
    const error = this.#settle();
    if (error !== undefined) return Promise.reject(error);
    this.queue.add({ id: next.id, body: next.body, priority: next.priority, deliveryCount: 0, local: next.local }, next.delayMs);
    return Promise.resolve();
  }

  defer(delayMs: number): Promise<void> {
    const error = this.#settle();
    if (error !== undefined) return Promise.reject(error);
    this.message.deliveryCount = 0;
    this.queue.add(this.message, delayMs);
    return Promise.resolve();
  }

  deadLetter(record: DeadLetterRecord): Promise<void> {
    const error = this.#settle();
    if (error !== undefined) return Promise.reject(error);
    this.queue.dead.push({ ...record, key: String(this.queue.server.nextKey++) });
    return Promise.resolve();
  }

  extendLease(ms: number): Promise<void> {
    if (this.consumer.connection.closed) return Promise.reject(new BrokerClosedError());
    if (!this.#held()) return Promise.reject(new LeaseLostError());
    this.deadline = Date.now() + ms;
    return Promise.resolve();
  }
}
