/**
 * The consuming side: deliveries and consumers. A consumer fetches for its free slots (up to two
 * fetches in flight), blocks on the queue's wake-up list when idle, and hands settlements to its
 * broker, which batches them per queue.
 */
import { BrokerClosedError, BrokerConnectionError } from "@jobs/core";
import {
  type BrokerEventMap,
  type DeadLetterRecord,
  type Delivery,
  type Emitter,
  LeaseLostError,
  type OutgoingMessage,
  type PublishOutcome,
  serializeError,
} from "@jobs/core/adapter";
import type { Redis } from "ioredis";
import type { RedisQueueKeys } from "../keys.js";
import { describe } from "./errors.js";
import type { ScriptName } from "./scripts.js";

const LEASE_LOST = "[jobs] [redis] the delivery's lease was lost (it expired or its consumer closed); it will be redelivered";

/** What a consumer needs from its broker. */
export interface ConsumerHost {
  /** The broker was closed. */
  readonly closed: boolean;
  /** Longest block on the wake-up list, in seconds. */
  readonly maxBlockSeconds: number;
  /** The broker's events. */
  readonly events: Emitter<BrokerEventMap>;
  /** Runs a script on the command connection. */
  run(name: ScriptName, keys: readonly string[], args: readonly (string | number)[], timed?: boolean): Promise<unknown>;
  /** Adds a settlement to the queue's next batch. */
  enqueueSettle(q: QueueState, op: (string | number)[], waiter: Waiter | undefined): void;
  /** Fetch for this consumer after the next batch of settlements. */
  wantFetch(consumer: RedisConsumer): void;
  /** Opens a connection with the adapter's settings. */
  connect(role: "command" | "blocking"): Redis;
}

/** A settlement waiting for its batch: 1 done, 0 lease lost. */
export interface Waiter {
  readonly resolve: (value: number) => void;
  readonly reject: (error: unknown) => void;
}

/** A publish call waiting for its batch. */
export interface PublishWaiter {
  readonly outcomes: PublishOutcome[];
  readonly indexes: number[];
  readonly resolve: (outcomes: PublishOutcome[]) => void;
}

/** Per physical queue: its keys and the batches waiting for the next flush. */
export interface QueueState {
  readonly name: string;
  readonly keys: RedisQueueKeys;
  readonly publishKeys: string[];
  readonly fetchKeys: string[];
  readonly settleKeys: string[];
  readonly inspectKeys: string[];
  readonly purgeKeys: string[];
  publishMessages: OutgoingMessage[];
  publishWaiters: PublishWaiter[];
  settleArgs: (string | number)[];
  settleWaiters: Waiter[];
  readonly consumers: Set<RedisConsumer>;
}

/** One delivery: its token is the member "<key>#<deliveries>" of the active set. */
export class RedisDelivery implements Delivery {
  readonly body: string;
  readonly deliveryCount: number;
  /** The delivery's token: "<key>#<deliveries>" in the active set. */
  readonly member: string;
  readonly #consumer: RedisConsumer;

  constructor(consumer: RedisConsumer, member: string, body: string) {
    this.#consumer = consumer;
    this.member = member;
    this.body = body;
    this.deliveryCount = Number(member.slice(member.lastIndexOf("#") + 1));
  }

  ack(): Promise<void> {
    return this.#consumer.settle(this, ["a", this.member]);
  }

  retry(next: OutgoingMessage): Promise<void> {
    return this.#consumer.settle(this, ["r", this.member, next.body, next.priority, Math.max(0, Math.ceil(next.delayMs))]);
  }

  defer(delayMs: number): Promise<void> {
    return this.#consumer.settle(this, ["f", this.member, Math.max(0, Math.ceil(delayMs))]);
  }

  deadLetter(record: DeadLetterRecord): Promise<void> {
    const stored = JSON.stringify({ body: record.body, reason: record.reason, error: record.error, failedAt: record.failedAt });
    return this.#consumer.settle(this, ["d", this.member, stored]);
  }

  extendLease(ms: number): Promise<void> {
    return this.#consumer.extend(this, ms);
  }
}

/** One consumer of a queue: fetches for its free slots, blocks on the wake-up list when idle. */
export class RedisConsumer {
  unsettled: number = 0;
  stopped: boolean = false;
  /** No fetches until resumed (Subscription.pause: core runs a crash suspect). */
  paused: boolean = false;
  readonly held: Set<RedisDelivery> = new Set();
  /** Fetches on their way (at most two, so Redis works on one while this process handles the other). */
  readonly fetching: Set<Promise<void>> = new Set();
  #reserved = 0;
  #again = false;
  #blocking = false;
  #blocker: Redis | undefined;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #failures = 0;

  constructor(
    readonly broker: ConsumerHost,
    readonly queue: QueueState,
    readonly prefetch: number,
    readonly leaseMs: number,
    readonly onDelivery: (delivery: Delivery) => void,
  ) {}

  /**
   * Fetch for the free slots (those neither held nor reserved by a fetch on its way). Up to two
   * fetches of half the prefetch each are in flight, so a backlog flows without waiting a full
   * round trip per batch; the prefetch limit still holds (slots are reserved before asking).
   */
  kick(): void {
    if (this.stopped || this.paused) return;
    if (this.fetching.size >= 2) {
      this.#again = true;
      return;
    }
    const free = this.prefetch - this.unsettled - this.#reserved;
    if (free <= 0) return;
    const ask = Math.min(free, Math.ceil(this.prefetch / 2));
    this.#again = false;
    this.#reserved += ask;
    const fetch: Promise<void> = this.broker.run("fetch", this.queue.fetchKeys, [ask, this.leaseMs]).then(
      (reply) => {
        this.fetching.delete(fetch);
        this.#reserved -= ask;
        this.#fetched(reply as (string | number)[], ask);
      },
      (error: unknown) => {
        this.fetching.delete(fetch);
        this.#reserved -= ask;
        this.#fetchFailed(error);
      },
    );
    this.fetching.add(fetch);
    if (ask < free) this.kick();
  }

  #fetched(reply: (string | number)[], asked: number): void {
    this.#failures = 0;
    const count = (reply.length - 1) / 2;
    if (this.stopped) {
      // Taken after stop() and never handed out: straight back to the front, delivery count restored.
      for (let i = 1; i < reply.length; i += 2) this.broker.enqueueSettle(this.queue, ["u", String(reply[i])], undefined);
      return;
    }
    for (let i = 1; i < reply.length; i += 2) {
      const delivery = new RedisDelivery(this, String(reply[i]), String(reply[i + 1]));
      this.held.add(delivery);
      this.unsettled++;
      try {
        this.onDelivery(delivery);
      } catch (error) {
        this.broker.events.emit("error", { error: serializeError(error) });
      }
    }
    if (count < asked) {
      // Drained: wake up for the next due delayed message or expiring lease, or a publish.
      const next = Number(reply[0]);
      if (next >= 0) this.#arm(next);
      this.#block();
    }
    if (this.#again || count === asked) this.kick();
  }

  #fetchFailed(error: unknown): void {
    if (this.stopped) return;
    if (this.#failures++ === 0) {
      this.broker.events.emit("error", {
        error: serializeError(new BrokerConnectionError(`[jobs] [redis] fetch failed: ${describe(error)}`)),
      });
    }
    this.#arm(Math.min(5_000, 50 * 2 ** Math.min(this.#failures, 7)));
  }

  #arm(ms: number): void {
    const at = performance.now() + ms;
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
      this.kick();
    }, ms + 1);
    this.#timer.unref();
  }

  /** Block on the queue's wake-up list (a connection of its own) until a publish or `maxBlock`. */
  #block(): void {
    if (this.#blocking || this.stopped) return;
    this.#blocking = true;
    this.#blocker ??= this.broker.connect("blocking");
    this.#blocker.blpop(this.queue.keys.wake, this.broker.maxBlockSeconds).then(
      () => {
        this.#blocking = false;
        this.kick();
      },
      () => {
        this.#blocking = false;
        if (!this.stopped) this.#arm(100);
      },
    );
  }

  settle(delivery: RedisDelivery, op: (string | number)[]): Promise<void> {
    if (this.broker.closed)
      return Promise.reject(new BrokerClosedError("[jobs] [redis] broker is closed; the delivery went back to its queue"));
    if (!this.held.delete(delivery)) return Promise.reject(new LeaseLostError("[jobs] [redis] the delivery was already settled"));
    this.unsettled--;
    return new Promise((resolve, reject) => {
      this.broker.enqueueSettle(this.queue, op, {
        resolve: (ok) => (ok === 1 ? resolve() : reject(new LeaseLostError(LEASE_LOST))),
        reject,
      });
      this.broker.wantFetch(this);
    });
  }

  extend(delivery: RedisDelivery, ms: number): Promise<void> {
    if (this.broker.closed) return Promise.reject(new BrokerClosedError("[jobs] [redis] broker is closed"));
    if (!this.held.has(delivery)) return Promise.reject(new LeaseLostError("[jobs] [redis] the delivery was already settled"));
    return new Promise((resolve, reject) => {
      this.broker.enqueueSettle(this.queue, ["e", delivery.member, Math.max(1, Math.ceil(ms))], {
        resolve: (ok) => (ok === 1 ? resolve() : reject(new LeaseLostError(LEASE_LOST))),
        reject,
      });
    });
  }

  /** Stops fetching; resolves once no fetch is on its way (what they took has been handed out). */
  async pause(): Promise<void> {
    this.paused = true;
    while (this.fetching.size > 0) await Promise.allSettled([...this.fetching]);
  }

  resume(): void {
    this.paused = false;
    this.kick();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#blocker?.disconnect();
  }
}
