import {
  assertConsumeOptions,
  BrokerClosedError,
  brokerClosedError,
  type ClaimOutcome,
  type ConsumeOptions,
  type DeadLetterRecord,
  type Delivery,
  type FinishRequest,
  LeaseLostError,
  type LocalEnvelope,
  type OutgoingMessage,
  redactedMessage,
  type Subscription,
} from "@jobs/core/adapter";
import type { MemoryConnection } from "./connection.js";
import type { Lease, LeaseClass, MemoryQueue, Message, QueueConsumer } from "./internal/queue.js";
import { kMemoryFusion, type MemoryFusion } from "./store.js";

/** A consumer fused with a memory store: its deliveries are claimed as they are handed out. */
interface Fused {
  readonly store: MemoryFusion;
  readonly ttlMs: number;
  readonly worker: string;
}

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
  readonly Delivery: LeaseClass;
  /** Set when the worker keeps records in a memory store (`ConsumeOptions.records`). */
  readonly fused: Fused | undefined;
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
    const records = options.records;
    const fusion = (records?.store as { [kMemoryFusion]?: MemoryFusion } | undefined)?.[kMemoryFusion];
    this.fused =
      records === undefined || fusion === undefined ? undefined : { store: fusion, ttlMs: records.ttlMs, worker: records.worker };
    this.Delivery = this.fused === undefined ? MemoryDelivery : FusedMemoryDelivery;
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

  /** Settles now (synchronously): undefined, or why not (closed, lease lost). */
  protected settleNow(): Error | undefined {
    if (this.consumer.connection.closed) {
      return brokerClosedError("memory", "the delivery went back to its queue");
    }
    if (!this.#held()) return new LeaseLostError();
    this.queue.release(this, false);
    return undefined;
  }

  ack(): Promise<void> {
    const error = this.settleNow();
    return error === undefined ? Promise.resolve() : Promise.reject(error);
  }

  retry(next: OutgoingMessage): Promise<void> {
    const error = this.settleNow();
    if (error !== undefined) return Promise.reject(error);
    this.queue.add({ id: next.id, body: next.body, priority: next.priority, deliveryCount: 0, local: next.local }, next.delayMs);
    return Promise.resolve();
  }

  defer(delayMs: number): Promise<void> {
    const error = this.settleNow();
    if (error !== undefined) return Promise.reject(error);
    this.message.deliveryCount = 0;
    this.queue.add(this.message, delayMs);
    return Promise.resolve();
  }

  deadLetter(record: DeadLetterRecord): Promise<void> {
    const error = this.settleNow();
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

/**
 * A delivery of a consumer fused with a memory store: a recorded, due message (core's own `local`
 * carries its id and generation) is claimed as it is handed out, and `finishAndAck` writes the
 * finish and acks in one synchronous step. No promise or batch stands between them.
 */
class FusedMemoryDelivery extends MemoryDelivery {
  readonly claim: ClaimOutcome | undefined;
  readonly #store: MemoryFusion;

  constructor(queue: MemoryQueue, message: Message, consumer: QueueConsumer, deadline: number) {
    super(queue, message, consumer, deadline);
    const fused = (consumer as MemoryConsumer).fused as Fused;
    this.#store = fused.store;
    const meta = message.local?.meta;
    let claim: ClaimOutcome | undefined;
    if (meta?.gen !== undefined && meta.runAt <= Date.now()) {
      try {
        claim = fused.store.claimNow({ id: meta.id, gen: meta.gen, ttlMs: fused.ttlMs, worker: fused.worker });
      } catch {
        claim = undefined; // a closed store: core claims, and hears the error there
      }
    }
    this.claim = claim;
  }

  finishAndAck(request: FinishRequest): Promise<boolean> {
    let finished: boolean;
    try {
      finished = this.#store.finishNow(request);
    } catch (error) {
      return Promise.reject(error);
    }
    if (!finished) return Promise.resolve(false);
    // The finish committed: a lost lease only means the message comes back and is acked unrun.
    this.settleNow();
    return Promise.resolve(true);
  }
}
