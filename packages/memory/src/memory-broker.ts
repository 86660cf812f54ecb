import { type Broker, BrokerClosedError, type Duration, InvalidOptionsError, PayloadTooLargeError, type QueueCounts } from "@jobs/core";
import {
  type BrokerCapabilities,
  type BrokerEventMap,
  type ConsumeOptions,
  type DeadLetter,
  type DeadLetterRecord,
  type Delivery,
  Emitter,
  LeaseLostError,
  type LocalEnvelope,
  MAX_TIMER_MS,
  type OutgoingMessage,
  type PublishOutcome,
  parseDuration,
  type Subscription,
} from "@jobs/core/adapter";
import { Deque, MinHeap } from "./internal/deque.js";

// queueMicrotask wraps each callback in an AsyncResource; a resolved promise's then() does not.
const RESOLVED: Promise<void> = Promise.resolve();

/** What the in-memory broker does natively. */
export const memoryCapabilities: BrokerCapabilities = {
  priority: "native",
  maxDelayMs: Number.POSITIVE_INFINITY,
  maxPayloadBytes: 1_048_576,
  dedupeWindowMs: 300_000,
  leaseExtension: true,
  durable: false,
  redeliverOnClose: true,
  timerResolutionMs: 1,
};

interface Message {
  readonly id: string;
  readonly body: string;
  readonly priority: number;
  deliveryCount: number;
  readonly local: LocalEnvelope | undefined;
}

interface Consumer {
  readonly owner: MemoryBrokerImpl;
  readonly prefetch: number;
  readonly leaseMs: number;
  readonly onDelivery: (delivery: Delivery) => void;
  unsettled: number;
  stopped: boolean;
  /** Subscription.pause: takes no deliveries until resumed. */
  paused: boolean;
}

interface Active {
  readonly message: Message;
  readonly consumer: Consumer;
  deadline: number;
}

class MemoryQueue {
  readonly ready: Deque<Message>[] = [new Deque(), new Deque(), new Deque(), new Deque(), new Deque()];
  readyCount: number = 0;
  readonly delayed: MinHeap<Message> = new MinHeap();
  readonly active: Set<Active> = new Set();
  dead: DeadLetter[] = [];
  consumers: Consumer[] = [];
  nextConsumer: number = 0;
  delayTimer: NodeJS.Timeout | undefined;
  delayTimerAt: number = Number.POSITIVE_INFINITY;
  leaseTimer: NodeJS.Timeout | undefined;
  dispatchScheduled: boolean = false;

  constructor(
    readonly server: MemoryServer,
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
      // The delivery is its own lease record: one object per delivery instead of two.
      const active = new MemoryDelivery(this, message, consumer, now + consumer.leaseMs);
      this.active.add(active);
      consumer.unsettled++;
      this.armLeaseTimer();
      try {
        consumer.onDelivery(active);
      } catch (error) {
        consumer.owner.events.emit("error", { error: { name: "ConsumerError", message: String((error as Error)?.message ?? error) } });
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

  pickConsumer(): Consumer | undefined {
    const n = this.consumers.length;
    for (let i = 0; i < n; i++) {
      const index = (this.nextConsumer + i) % n;
      const consumer = this.consumers[index] as Consumer;
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
    for (const active of this.active) {
      if (active.deadline <= now) this.release(active, true);
    }
    if (this.active.size === 0 && this.leaseTimer !== undefined) {
      clearInterval(this.leaseTimer);
      this.leaseTimer = undefined;
    }
  }

  /** Ends an active delivery. `requeue`: the message goes back to the front of its level. */
  release(active: Active, requeue: boolean): void {
    this.active.delete(active);
    active.consumer.unsettled--;
    if (requeue) this.pushReady(active.message, true);
    else this.scheduleDispatch();
  }

  counts(): QueueCounts {
    return { waiting: this.readyCount, delayed: this.delayed.size, active: this.active.size, dead: this.dead.length };
  }
}

class MemoryDelivery implements Delivery, Active {
  readonly body: string;
  readonly deliveryCount: number;
  readonly local: LocalEnvelope | undefined;

  constructor(
    private readonly queue: MemoryQueue,
    readonly message: Message,
    readonly consumer: Consumer,
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
    if (this.consumer.owner.closed) return new BrokerClosedError("[jobs] [memory] broker is closed; the delivery went back to its queue");
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
    if (this.consumer.owner.closed) return Promise.reject(new BrokerClosedError());
    if (!this.#held()) return Promise.reject(new LeaseLostError());
    this.deadline = Date.now() + ms;
    return Promise.resolve();
  }
}

/**
 * The state of an in-memory broker: its queues. Several `createMemoryBroker({ server })` share one
 * server the way several connections share a real broker (publish through one, consume through
 * another; closing one releases only its own deliveries).
 */
export class MemoryServer {
  /** @internal */
  readonly queues: Map<string, MemoryQueue> = new Map();
  /** @internal */
  readonly dedupe: Map<string, number> = new Map();
  /** @internal */
  nextKey: number = 1;
  /** @internal */
  paused: boolean = false;
  /** @internal Dispatches run as microtasks since the last yield to the event loop. */
  burst: number = 0;

  /** @internal */
  queue(name: string): MemoryQueue {
    let queue = this.queues.get(name);
    if (queue === undefined) {
      queue = new MemoryQueue(this, name);
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** Stop handing out deliveries (publishing still works). */
  pause(): void {
    this.paused = true;
  }

  /** Resume handing out deliveries. */
  resume(): void {
    this.paused = false;
    for (const queue of this.queues.values()) queue.scheduleDispatch();
  }

  /** True when no queue has a ready or in-flight message, nor a delayed one due within `withinMs`. */
  idle(withinMs = 0): boolean {
    const horizon = Date.now() + withinMs;
    for (const queue of this.queues.values()) {
      if (queue.readyCount > 0 || queue.active.size > 0) return false;
      const next = queue.delayed.peekKey();
      if (next !== undefined && next <= horizon) return false;
    }
    return true;
  }
}

/** Creates the state a group of memory brokers share. */
export function createMemoryServer(): MemoryServer {
  return new MemoryServer();
}

/** Options of `createMemoryBroker`. */
export interface MemoryBrokerOptions {
  /** Share queues with other memory brokers (like connections to one server). @default a new private server */
  readonly server?: MemoryServer;
  /** Largest message accepted, in bytes. @default 1048576 (1 MiB, as SQS) */
  readonly maxPayloadBytes?: number;
  /** How long a published id is remembered for dedupe. @default "5m" */
  readonly dedupeWindow?: Duration;
  /** `"none"` turns native priority off so core's per-level emulation runs (for tests). @default "native" */
  readonly priority?: "native" | "none";
  /** Longest native delay; lower it to exercise core's re-delay on receipt (for tests). @default Infinity */
  readonly maxDelay?: Duration;
  /** Start paused: nothing is delivered until `resume()`. @default false */
  readonly paused?: boolean;
}

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
  drain(options?: { readonly timeout?: Duration; readonly delayedWithin?: Duration }): Promise<void>;
}

class MemoryBrokerImpl implements MemoryBroker {
  readonly name: string = "memory";
  readonly capabilities: BrokerCapabilities;
  readonly server: MemoryServer;
  readonly events: Emitter<BrokerEventMap> = new Emitter<BrokerEventMap>();
  readonly on: Broker["on"] = this.events.on;
  closed: boolean = false;
  readonly #consumers = new Set<Consumer>();
  readonly #dedupeWindowMs: number;
  #publishes = 0;

  constructor(options: MemoryBrokerOptions) {
    this.server = options.server ?? new MemoryServer();
    if (!(this.server instanceof MemoryServer)) throw new InvalidOptionsError("server", "expected a server from createMemoryServer()");
    const maxPayloadBytes = options.maxPayloadBytes ?? memoryCapabilities.maxPayloadBytes;
    if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 1) {
      throw new InvalidOptionsError("maxPayloadBytes", `expected a positive integer, got ${String(maxPayloadBytes)}`);
    }
    const priority = options.priority ?? "native";
    if (priority !== "native" && priority !== "none") throw new InvalidOptionsError("priority", 'expected "native" or "none"');
    this.#dedupeWindowMs = parseDuration(options.dedupeWindow ?? memoryCapabilities.dedupeWindowMs, "dedupeWindow");
    const maxDelayMs = options.maxDelay === undefined ? memoryCapabilities.maxDelayMs : parseDuration(options.maxDelay, "maxDelay");
    if (maxDelayMs < 10) throw new InvalidOptionsError("maxDelay", "expected at least 10 ms (shorter would spin re-delaying early jobs)");
    this.capabilities = { ...memoryCapabilities, maxPayloadBytes, priority, maxDelayMs, dedupeWindowMs: this.#dedupeWindowMs };
    if (options.paused === true) this.server.pause();
  }

  publish(queueName: string, messages: readonly OutgoingMessage[]): Promise<PublishOutcome[]> {
    if (this.closed) return Promise.reject(new BrokerClosedError("[jobs] [memory] broker is closed"));
    const queue = this.server.queue(queueName);
    const now = Date.now();
    const dedupe = this.server.dedupe;
    if (++this.#publishes % 1024 === 0) this.#sweepDedupe(now);
    const outcomes: PublishOutcome[] = [];
    for (const m of messages) {
      // Measured as string length ×3 first: exact UTF-8 counting is only needed near the limit.
      if (m.body.length * 3 > this.capabilities.maxPayloadBytes) {
        const size = Buffer.byteLength(m.body, "utf8");
        if (size > this.capabilities.maxPayloadBytes) {
          outcomes.push({ ok: false, error: new PayloadTooLargeError(size, this.capabilities.maxPayloadBytes, "message") });
          continue;
        }
      }
      if (m.dedupe && this.#dedupeWindowMs > 0) {
        const key = `${queueName}\u0000${m.id}`;
        const until = dedupe.get(key);
        if (until !== undefined && until > now) {
          outcomes.push({ ok: true, duplicate: true });
          continue;
        }
        dedupe.delete(key);
        dedupe.set(key, now + this.#dedupeWindowMs);
      }
      // `local` is core's pre-split copy of this very body (the contract requires it to match).
      queue.add({ id: m.id, body: m.body, priority: m.priority, deliveryCount: 0, local: m.local }, m.delayMs);
      outcomes.push({ ok: true, duplicate: false });
    }
    return Promise.resolve(outcomes);
  }

  #sweepDedupe(now: number): void {
    for (const [key, until] of this.server.dedupe) {
      if (until > now) break;
      this.server.dedupe.delete(key);
    }
  }

  consume(queueName: string, options: ConsumeOptions, onDelivery: (delivery: Delivery) => void): Promise<Subscription> {
    if (this.closed) return Promise.reject(new BrokerClosedError("[jobs] [memory] broker is closed"));
    if (!Number.isInteger(options.prefetch) || options.prefetch < 1) {
      return Promise.reject(new InvalidOptionsError("prefetch", "expected a positive integer"));
    }
    if (!(options.leaseMs > 0)) return Promise.reject(new InvalidOptionsError("leaseMs", "expected a positive number"));
    const queue = this.server.queue(queueName);
    const consumer: Consumer = {
      owner: this,
      prefetch: options.prefetch,
      leaseMs: options.leaseMs,
      onDelivery,
      unsettled: 0,
      stopped: false,
      paused: false,
    };
    queue.consumers.push(consumer);
    this.#consumers.add(consumer);
    queue.scheduleDispatch();
    const stop = (): void => {
      if (consumer.stopped) return;
      consumer.stopped = true;
      queue.consumers = queue.consumers.filter((c) => c !== consumer);
      this.#consumers.delete(consumer);
    };
    return Promise.resolve({
      stop: () => Promise.resolve(stop()),
      // Deliveries are handed out synchronously: nothing is ever on its way when a pause returns.
      pause: () => {
        consumer.paused = true;
        return Promise.resolve();
      },
      resume: () => {
        consumer.paused = false;
        queue.scheduleDispatch();
      },
    });
  }

  counts(queue: string): Promise<QueueCounts> {
    if (this.closed) return Promise.reject(new BrokerClosedError());
    return Promise.resolve(this.server.queue(queue).counts());
  }

  listDeadLetters(queue: string, options: { readonly limit: number; readonly offset?: number }): Promise<DeadLetter[]> {
    if (this.closed) return Promise.reject(new BrokerClosedError());
    const offset = options.offset ?? 0;
    return Promise.resolve(this.server.queue(queue).dead.slice(offset, offset + options.limit));
  }

  removeDeadLetters(queue: string, keys: readonly string[]): Promise<number> {
    if (this.closed) return Promise.reject(new BrokerClosedError());
    const q = this.server.queue(queue);
    const remove = new Set(keys);
    const before = q.dead.length;
    q.dead = q.dead.filter((d) => !remove.has(d.key));
    return Promise.resolve(before - q.dead.length);
  }

  purge(queue: string): Promise<void> {
    if (this.closed) return Promise.reject(new BrokerClosedError());
    const q = this.server.queue(queue);
    for (const deque of q.ready) deque.clear();
    q.readyCount = 0;
    q.delayed.clear();
    q.dead = [];
    return Promise.resolve();
  }

  pause(): void {
    this.server.pause();
  }

  resume(): void {
    this.server.resume();
  }

  async drain(options: { readonly timeout?: Duration; readonly delayedWithin?: Duration } = {}): Promise<void> {
    const timeoutMs = parseDuration(options.timeout ?? "30s", "timeout");
    const withinMs = parseDuration(options.delayedWithin ?? 0, "delayedWithin");
    const deadline = Date.now() + timeoutMs;
    while (!this.server.idle(withinMs)) {
      if (Date.now() > deadline) throw new Error(`[jobs] [memory] drain: still busy after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const queue of this.server.queues.values()) {
      queue.consumers = queue.consumers.filter((c) => c.owner !== this);
      for (const active of queue.active) {
        // Like a closed AMQP channel: this connection's unsettled deliveries go back to their queue.
        if (active.consumer.owner === this) queue.release(active, true);
      }
    }
    this.#consumers.clear();
    return Promise.resolve();
  }
}

/** Creates an in-memory broker. Pass `server` to share queues between several instances. */
export function createMemoryBroker(options: MemoryBrokerOptions = {}): MemoryBroker {
  return new MemoryBrokerImpl(options);
}
