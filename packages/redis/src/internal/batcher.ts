/**
 * Per-queue batches: the publishes and settlements of many jobs go out as one script call per
 * queue. Publishes go out at the end of the current tick (concurrent enqueues of one tick still
 * share a call); settlements wait for the end of this turn of the event loop, so the acks of every
 * job that completed in it go out together, followed by the fetches that refill.
 */
import { checkQueue, type QueueState, queueState, type Waiter } from "./queues.js";

/** What sends a queue's pending batch as one call. */
export interface BatchSenders {
  publishes(q: QueueState): Promise<void>;
  settlements(q: QueueState): Promise<void>;
}

/** A consumer that fetches once the settlements before it went out. */
export interface Fetcher {
  kick(): void;
}

/** A settlement whose result nobody waits for (releases). */
const UNWATCHED: Waiter = { resolve: () => {}, reject: () => {} };

export class Batcher {
  readonly #prefix: string;
  readonly #senders: BatchSenders;
  readonly #queues = new Map<string, QueueState>();
  readonly #dirty = new Set<QueueState>();
  readonly #fetchWanted = new Set<Fetcher>();
  #flushScheduled = false;
  #microFlush = false;

  constructor(prefix: string, senders: BatchSenders) {
    this.#prefix = prefix;
    this.#senders = senders;
  }

  /** The state of a queue (InvalidOptionsError for a bad name). */
  queue(name: string): QueueState {
    let q = this.#queues.get(name);
    if (q === undefined) {
      q = queueState(checkQueue(name), this.#prefix);
      this.#queues.set(name, q);
    }
    return q;
  }

  /** Flush `q`'s batches soon (publishes: at the end of this tick) or later (settlements: at the end of this turn). */
  schedule(q: QueueState, soon: boolean): void {
    this.#dirty.add(q);
    if (soon) {
      if (this.#microFlush) return;
      this.#microFlush = true;
      queueMicrotask(() => {
        this.#microFlush = false;
        void this.flush();
      });
    } else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        void this.flush();
      });
    }
  }

  /** Adds a settlement (settle.lua's ARGV for one operation) to the queue's next batch. */
  enqueueSettle(q: QueueState, op: (string | number)[], waiter: Waiter | undefined): void {
    for (const a of op) q.settleArgs.push(a);
    q.settleWaiters.push(waiter ?? UNWATCHED);
    this.schedule(q, false);
  }

  /** `fetcher` fetches after the next batch of settlements. */
  wantFetch(fetcher: Fetcher): void {
    this.#fetchWanted.add(fetcher);
  }

  /** Forgets the fetches asked for (close: the consumers are stopped). */
  forgetFetches(): void {
    this.#fetchWanted.clear();
  }

  /** Sends every pending batch; resolves when all of them settled. */
  flush(): Promise<unknown> {
    const sent: Promise<unknown>[] = [];
    for (const q of this.#dirty) {
      if (q.publishWaiters.length > 0) sent.push(this.#senders.publishes(q));
      if (q.settleWaiters.length > 0) sent.push(this.#senders.settlements(q));
    }
    this.#dirty.clear();
    // Fetch after the settlements, on the same connection: Redis runs them in that order.
    for (const fetcher of this.#fetchWanted) fetcher.kick();
    this.#fetchWanted.clear();
    return Promise.allSettled(sent);
  }
}
