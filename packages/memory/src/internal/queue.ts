import type { DeadLetter, Delivery, LocalEnvelope, QueueCounts } from "@jobs/core/adapter";
import { MAX_TIMER_MS } from "@jobs/core/adapter";
import { Deque, MinHeap } from "./deque.js";

// queueMicrotask wraps each callback in an AsyncResource; a resolved promise's then() does not.
const RESOLVED: Promise<void> = Promise.resolve();

/** A message held by a queue: ready, delayed or in flight. */
export interface Message {
  readonly id: string;
  readonly body: string;
  readonly priority: number;
  deliveryCount: number;
  readonly local: LocalEnvelope | undefined;
}

/** The server-wide state a queue reads and updates (`MemoryServer` in server.ts). */
export interface ServerState {
  /** Stop handing out deliveries on every queue. */
  readonly paused: boolean;
  /** Dispatches run as microtasks since the last yield to the event loop. */
  burst: number;
  /** The next dead letter's key (server-wide, so keys never repeat across queues). */
  nextKey: number;
}

/** A subscriber of one queue, as the queue sees it (`MemoryConsumer` in consumer.ts). */
export interface QueueConsumer {
  readonly prefetch: number;
  readonly leaseMs: number;
  /** Whose consumer it is: closing that connection takes back its consumers and deliveries. */
  readonly connection: { readonly closed: boolean };
  /**
   * The class of this consumer's deliveries (consumer.ts's `MemoryDelivery`), which dispatch
   * constructs itself: a `lease()` method around the `new` measured slower on the hot path.
   */
  readonly Delivery: LeaseClass;
  readonly onDelivery: (delivery: Delivery) => void;
  unsettled: number;
  /** Subscription.pause: takes no deliveries until resumed. */
  paused: boolean;
  /** Reports a throw from `onDelivery` (it never reaches the dispatch loop). */
  deliveryFailed(error: unknown): void;
}

/** Makes the delivery of `message` to `consumer`, leased until `deadline`: the delivery is its own lease record. */
export type LeaseClass = new (queue: MemoryQueue, message: Message, consumer: QueueConsumer, deadline: number) => Lease;

/** A delivery in flight. */
export interface Lease extends Delivery {
  readonly message: Message;
  readonly consumer: QueueConsumer;
  deadline: number;
}

/** One queue: five ready lists (one per priority level), the delayed heap, the leases, the dead letters. */
export class MemoryQueue {
  readonly ready: Deque<Message>[] = [new Deque(), new Deque(), new Deque(), new Deque(), new Deque()];
  readyCount: number = 0;
  readonly delayed: MinHeap<Message> = new MinHeap();
  readonly active: Set<Lease> = new Set();
  dead: DeadLetter[] = [];
  consumers: QueueConsumer[] = [];
  nextConsumer: number = 0;
  delayTimer: NodeJS.Timeout | undefined;
  delayTimerAt: number = Number.POSITIVE_INFINITY;
  leaseTimer: NodeJS.Timeout | undefined;
  dispatchScheduled: boolean = false;

  constructor(
    readonly server: ServerState,
    readonly name: string,
  ) {}

  pushReady(message: Message, front = false): void {
    const deque = this.ready[message.priority] as Deque<Message>;
    if (front) deque.unshift(message);
    else deque.push(message);
    this.readyCount++;
    this.scheduleDispatch();
  }

  add(message: Message, delayMs: number): void {
    if (delayMs > 0) {
      const due = Date.now() + delayMs;
      this.delayed.push(due, message);
      this.armDelayTimer(due);
    } else {
      this.pushReady(message);
    }
  }

  armDelayTimer(due: number): void {
    if (due >= this.delayTimerAt) return;
    if (this.delayTimer !== undefined) clearTimeout(this.delayTimer);
    this.delayTimerAt = due;
    // Node timers overflow past 2^31-1 ms (they would fire at once): wake up early and re-arm instead.
    this.delayTimer = setTimeout(() => this.promote(), Math.min(MAX_TIMER_MS, Math.max(0, due - Date.now())));
    this.delayTimer.unref();
  }

  promote(): void {
    this.delayTimer = undefined;
    this.delayTimerAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    for (let key = this.delayed.peekKey(); key !== undefined && key <= now; key = this.delayed.peekKey()) {
      this.pushReady(this.delayed.pop() as Message);
    }
    const next = this.delayed.peekKey();
    if (next !== undefined) this.armDelayTimer(next);
  }

  scheduleDispatch(): void {
    if (this.dispatchScheduled || this.consumers.length === 0) return;
    this.dispatchScheduled = true;
    // Microtasks keep hand-offs cheap; every few hundred in a row, yield to the event loop so
    // timers (leases, heartbeats) and I/O are never starved by a long backlog.
    if (this.server.burst < 256) {
      this.server.burst++;
      void RESOLVED.then(this.dispatchTask);
    } else {
      setImmediate(this.yieldTask);
    }
  }

  readonly dispatchTask: () => void = () => this.dispatch();
  readonly yieldTask: () => void = () => {
    this.server.burst = 0;
    this.dispatch();
  };

  dispatch(): void {
    this.dispatchScheduled = false;
    if (this.server.paused) return;
    // Only the messages ready now: one a consumer puts back synchronously (defer(0) inside
    // onDelivery) waits for the next dispatch instead of looping here forever.
    // One clock read per round: leases are checked every ≥5 ms anyway.
    const now = this.readyCount > 0 ? Date.now() : 0;
    for (let budget = this.readyCount; budget > 0 && this.readyCount > 0; budget--) {
      const consumer = this.pickConsumer();
      if (consumer === undefined) return;
      const message = this.takeReady();
      message.deliveryCount++;
      const lease = new consumer.Delivery(this, message, consumer, now + consumer.leaseMs);
      this.active.add(lease);
      consumer.unsettled++;
      this.armLeaseTimer();
      try {
        consumer.onDelivery(lease);
      } catch (error) {
        consumer.deliveryFailed(error);
      }
    }
  }

  takeReady(): Message {
    for (let p = 4; p >= 0; p--) {
      const deque = this.ready[p] as Deque<Message>;
      if (deque.length > 0) {
        this.readyCount--;
        return deque.shift() as Message;
      }
    }
    throw new Error("unreachable: readyCount out of sync");
  }

  pickConsumer(): QueueConsumer | undefined {
    const n = this.consumers.length;
    for (let i = 0; i < n; i++) {
      const index = (this.nextConsumer + i) % n;
      const consumer = this.consumers[index] as QueueConsumer;
      if (consumer.unsettled < consumer.prefetch && !consumer.paused) {
        this.nextConsumer = (index + 1) % n;
        return consumer;
      }
    }
    return undefined;
  }

  armLeaseTimer(): void {
    if (this.leaseTimer !== undefined) return;
    let shortest = Number.POSITIVE_INFINITY;
    for (const c of this.consumers) shortest = Math.min(shortest, c.leaseMs);
    if (!Number.isFinite(shortest)) shortest = 1_000;
    const period = Math.min(250, Math.max(5, Math.floor(shortest / 10)));
    this.leaseTimer = setInterval(() => this.expireLeases(), period);
    this.leaseTimer.unref();
  }

  expireLeases(): void {
    const now = Date.now();
    for (const lease of this.active) {
      if (lease.deadline <= now) this.release(lease, true);
    }
    if (this.active.size === 0 && this.leaseTimer !== undefined) {
      clearInterval(this.leaseTimer);
      this.leaseTimer = undefined;
    }
  }

  /** Ends a delivery in flight. `requeue`: the message goes back to the front of its level. */
  release(lease: Lease, requeue: boolean): void {
    this.active.delete(lease);
    lease.consumer.unsettled--;
    if (requeue) this.pushReady(lease.message, true);
    else this.scheduleDispatch();
  }

  /** Removes the waiting, delayed and dead messages; deliveries in flight stay. */
  purge(): void {
    for (const deque of this.ready) deque.clear();
    this.readyCount = 0;
    this.delayed.clear();
    this.dead = [];
  }

  counts(): QueueCounts {
    return { waiting: this.readyCount, delayed: this.delayed.size, active: this.active.size, dead: this.dead.length };
  }
}
