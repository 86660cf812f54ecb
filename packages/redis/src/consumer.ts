/**
 * consume() and the consuming side: deliveries and consumers. A consumer fetches for its free
 * slots (up to two fetches in flight), blocks on the queue's wake-up list when idle, and hands
 * settlements to the per-queue batches, sent as one settle.lua call per queue.
 */
import {
  BrokerConnectionError,
  type BrokerEventMap,
  brokerClosedError,
  type ClaimOutcome,
  type ConsumeOptions,
  type DeadLetterRecord,
  type Delivery,
  type Emitter,
  type FinishRequest,
  type JobStatus,
  LeaseLostError,
  type OutgoingMessage,
  reconnectDelay,
  redactedMessage,
  type Subscription,
  serializeError,
} from "@jobs/core/adapter";
import type { Redis } from "ioredis";
import { connectionError } from "./connection.js";
import type { QueueState, Waiter } from "./internal/queues.js";
import type { Scripts } from "./internal/scripts.js";
import { finishArgs } from "./store/codec.js";

const LEASE_LOST = "[jobs] [redis] the delivery's lease was lost (it expired or its consumer closed); it will be redelivered";

/** What a consumer needs from its broker. */
export interface ConsumerHost {
  /** The broker was closed. */
  readonly closed: boolean;
  /** Longest block on the wake-up list, in seconds. */
  readonly maxBlockSeconds: number;
  /** The broker's events. */
  readonly events: Emitter<BrokerEventMap>;
  /** Runs fetch.lua on the command connection. */
  readonly scripts: Scripts;
  /** The per-queue batches settlements join. */
  readonly batches: SettleBatches;
  /** Opens a connection of its own for blocking on the wake-up list. */
  connect(role: "blocking"): Redis;
  /** Waits for `fetches` to settle, within the request timeout, and not at all while Redis is unreachable. */
  drain(fetches: readonly Promise<void>[]): Promise<void>;
}

/** The per-queue batches: queues by name, settlements, and fetches that wait for them. */
export interface SettleBatches {
  queue(name: string): QueueState;
  /** Adds a settlement to the queue's next batch. */
  enqueueSettle(q: QueueState, op: (string | number)[], waiter: Waiter | undefined): void;
  /** Fetch for this consumer after the next batch of settlements. */
  wantFetch(consumer: RedisConsumer): void;
}

/** Sends the queue's pending settlements as one settle.lua call; each waiter gets 1 (done) or 0 (lease lost). */
export function sendSettlements(scripts: Scripts, q: QueueState): Promise<void> {
  const args = q.settleArgs;
  const waiters = q.settleWaiters;
  q.settleArgs = [];
  q.settleWaiters = [];
  const sent =
    q.fusedBase === undefined
      ? scripts.run("settle", q.settleKeys, args, true)
      : scripts.runFused("settle", [...q.settleKeys, q.fusedBase], args, true);
  return sent.then(
    (reply) => {
      const results = reply as number[];
      for (let i = 0; i < waiters.length; i++) (waiters[i] as Waiter).resolve(results[i] as number);
    },
    (error: unknown) => {
      const failure = connectionError("settlement failed", error);
      for (const w of waiters) w.reject(failure);
    },
  );
}

/** The consumers of a broker. */
export class RedisConsumers {
  readonly #host: ConsumerHost;
  readonly #all = new Set<RedisConsumer>();

  constructor(host: ConsumerHost) {
    this.#host = host;
  }

  /** Starts a consumer of `queue` (it fetches at once), fused with a job store when `fused` is given. */
  consume(queue: string, options: ConsumeOptions, onDelivery: (delivery: Delivery) => void, fused?: Fused): Subscription {
    const q = this.#host.batches.queue(queue);
    if (fused !== undefined) q.fusedBase = fused.base;
    const consumer = new RedisConsumer(this.#host, q, options.prefetch, Math.ceil(options.leaseMs), onDelivery, fused);
    this.#all.add(consumer);
    consumer.kick();
    return {
      // Resolves once the fetches on their way have come back (bounded): what they took is handed out or put back by then.
      stop: async () => {
        consumer.stop();
        await this.#host.drain([...consumer.fetching]);
      },
      pause: () => consumer.pause(),
      resume: () => consumer.resume(),
    };
  }

  /** The connection is back: every consumer looks for work. */
  kickAll(): void {
    for (const consumer of this.#all) consumer.kick();
  }

  /** Stops every consumer; returns the fetches still on their way. */
  stopAll(): Promise<void>[] {
    for (const consumer of this.#all) consumer.stop();
    return [...this.#all].flatMap((c) => [...c.fetching]);
  }

  /** Hands every held delivery back to its queue (in the next settle batch) and forgets the consumers. */
  releaseAll(): void {
    for (const consumer of this.#all) {
      for (const delivery of consumer.held) this.#host.batches.enqueueSettle(consumer.queue, ["l", delivery.member], undefined);
      consumer.held.clear();
    }
    this.#all.clear();
  }
}

/** A consumer fused with a job store: the store's base and how to claim (fetch.lua, FUSED). */
export interface Fused {
  readonly base: string;
  readonly ttlMs: number;
  readonly worker: string;
}

/** The claim fetch.lua encoded (see lua/fetch.lua), or undefined when it made none. */
export function decodeClaim(text: string): ClaimOutcome | undefined {
  if (text === "") return undefined;
  const parts = text.split(":");
  switch (parts[0]) {
    case "c":
      return { outcome: "claimed", fence: Number(parts[1]), claims: Number(parts[2]), cancelRequested: parts[3] === "1" };
    case "b":
      return { outcome: "busy", retryInMs: Number(parts[1]) };
    default:
      return parts.length > 1 ? { outcome: "stale", status: parts[1] as JobStatus } : { outcome: "stale" };
  }
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

/** A delivery of a fused consumer: its record was claimed by the fetch, and its ack can write the finish. */
export class FusedRedisDelivery extends RedisDelivery {
  readonly claim: ClaimOutcome | undefined;
  readonly #owner: RedisConsumer;

  constructor(consumer: RedisConsumer, member: string, body: string, claim: ClaimOutcome | undefined) {
    super(consumer, member, body);
    this.#owner = consumer;
    this.claim = claim;
  }

  finishAndAck(f: FinishRequest): Promise<boolean> {
    return this.#owner.finishAndAck(this, ["F", this.member, ...finishArgs(f)]);
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
    readonly fused: Fused | undefined = undefined,
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
    const f = this.fused;
    const sent =
      f === undefined
        ? this.broker.scripts.run("fetch", this.queue.fetchKeys, [ask, this.leaseMs])
        : this.broker.scripts.runFused("fetch", [...this.queue.fetchKeys, f.base], [ask, this.leaseMs, f.ttlMs, f.worker]);
    const fetch: Promise<void> = sent.then(
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
    // member, body (and, fused, the claim) per message.
    const stride = this.fused === undefined ? 2 : 3;
    const count = (reply.length - 1) / stride;
    if (this.stopped) {
      for (let i = 1; i < reply.length; i += stride) {
        const claim = stride === 3 && !this.broker.closed ? decodeClaim(String(reply[i + 2])) : undefined;
        if (claim?.outcome === "claimed") {
          // Its record was claimed by this fetch: handed out after all, so that core gives the record
          // back with the message (as on shutdown), instead of leaving it active until its claim runs out.
          this.#handOut(new FusedRedisDelivery(this, String(reply[i]), String(reply[i + 1]), claim));
        } else {
          // Taken after stop() and never handed out: straight back to the front, delivery count restored.
          this.broker.batches.enqueueSettle(this.queue, ["u", String(reply[i])], undefined);
        }
      }
      return;
    }
    for (let i = 1; i < reply.length; i += stride) {
      const delivery =
        stride === 2
          ? new RedisDelivery(this, String(reply[i]), String(reply[i + 1]))
          : new FusedRedisDelivery(this, String(reply[i]), String(reply[i + 1]), decodeClaim(String(reply[i + 2])));
      this.#handOut(delivery);
    }
    if (count < asked) {
      // Drained: wake up for the next due delayed message or expiring lease, or a publish.
      const next = Number(reply[0]);
      if (next >= 0) this.#arm(next);
      this.#block();
    }
    if (this.#again || count === asked) this.kick();
  }

  #handOut(delivery: RedisDelivery): void {
    this.held.add(delivery);
    this.unsettled++;
    try {
      this.onDelivery(delivery);
    } catch (error) {
      this.broker.events.emit("error", { error: serializeError(error) });
    }
  }

  #fetchFailed(error: unknown): void {
    if (this.stopped) return;
    if (this.#failures++ === 0) {
      this.broker.events.emit("error", {
        error: serializeError(new BrokerConnectionError(`[jobs] [redis] fetch failed: ${redactedMessage(error)}`)),
      });
    }
    this.#arm(reconnectDelay(this.#failures - 1, { initialMs: 100, maxMs: 5_000 }));
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
    if (this.broker.closed) return Promise.reject(brokerClosedError("redis", "the delivery went back to its queue"));
    if (!this.held.delete(delivery)) return Promise.reject(new LeaseLostError("[jobs] [redis] the delivery was already settled"));
    this.unsettled--;
    return new Promise((resolve, reject) => {
      this.broker.batches.enqueueSettle(this.queue, op, {
        resolve: (ok) => (ok === 1 ? resolve() : reject(new LeaseLostError(LEASE_LOST))),
        reject,
      });
      this.broker.batches.wantFetch(this);
    });
  }

  /**
   * The fused finish-and-ack: 1 finished and acked, 2 finished with the lease lost, 0 the store
   * refused the finish. Like an ack, it frees its slot at once and the refill fetch follows this
   * batch; a refused finish takes the slot back (the delivery stays held: core then releases it),
   * so the consumer may briefly hold one more than its prefetch after a takeover.
   */
  finishAndAck(delivery: RedisDelivery, op: (string | number)[]): Promise<boolean> {
    if (this.broker.closed) return Promise.reject(brokerClosedError("redis", "the delivery went back to its queue"));
    if (!this.held.has(delivery)) return Promise.reject(new LeaseLostError("[jobs] [redis] the delivery was already settled"));
    this.unsettled--;
    return new Promise((resolve, reject) => {
      this.broker.batches.enqueueSettle(this.queue, op, {
        resolve: (result) => {
          if (result === 0) this.unsettled++;
          else this.held.delete(delivery);
          resolve(result !== 0);
        },
        reject: (error) => {
          this.unsettled++;
          reject(error);
        },
      });
      this.broker.batches.wantFetch(this);
    });
  }

  extend(delivery: RedisDelivery, ms: number): Promise<void> {
    if (this.broker.closed) return Promise.reject(brokerClosedError("redis"));
    if (!this.held.has(delivery)) return Promise.reject(new LeaseLostError("[jobs] [redis] the delivery was already settled"));
    return new Promise((resolve, reject) => {
      this.broker.batches.enqueueSettle(this.queue, ["e", delivery.member, Math.max(1, Math.ceil(ms))], {
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
