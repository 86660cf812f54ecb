import type { Delivery } from "@jobs/core/adapter";

/** A delivery as its consumer tracks it: its lease deadline (ms since the epoch). */
export interface Leased {
  readonly deadline: number;
}

/** The bookkeeping of one consumer: its prefetch slots, the deliveries it holds, and waking its receive loops. */
export class ConsumerState<D extends Leased> {
  /** Deliveries handed out and not settled. */
  unsettled = 0;
  /** Slots promised to receives in flight. */
  reserved = 0;
  /** Receive loops running. */
  loops = 0;
  /** No new deliveries (stop or close). */
  stopped = false;
  /** No new receives until resumed (Subscription.pause: core runs a crash suspect). */
  paused = false;
  /** The unsettled deliveries. */
  readonly held: Set<D> = new Set<D>();
  /** Receive loops running (each ends once its receive in flight, if any, has answered). */
  readonly running: Set<Promise<void>> = new Set<Promise<void>>();
  /** The consumer's first (short) poll while it is out, with its delivery or hand-back. */
  firstPoll: Promise<void> | undefined = undefined;
  /** When a message this consumer settled last becomes visible again (ms since the epoch): a receive in flight may take it. */
  madeVisibleAt = 0;
  /** Aborts receives in flight (close). */
  readonly abort: AbortController = new AbortController();
  #waiters: (() => void)[] = [];

  constructor(
    readonly queue: string,
    readonly url: string,
    readonly prefetch: number,
    readonly visibilitySeconds: number,
    readonly maxLoops: number,
    readonly onDelivery: (delivery: Delivery) => void,
  ) {}

  /** Frees the slot of a delivery that is settled or whose lease ran out, and wakes a waiting loop. */
  release(delivery: D): void {
    if (!this.held.delete(delivery)) return;
    this.unsettled--;
    this.wake();
  }

  /** Notes that a message of this consumer becomes visible again after `afterMs` (a hand-back, a defer, a retry). */
  visibleAgain(afterMs: number): void {
    this.madeVisibleAt = Math.max(this.madeVisibleAt, Date.now() + afterMs);
  }

  /** Wakes every loop waiting for capacity or sleeping after an error. */
  wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  /** Resolves when a slot may have freed: a settle, a lease running out, stop or close. */
  capacity(): Promise<void> {
    let earliest = Number.POSITIVE_INFINITY;
    for (const d of this.held) earliest = Math.min(earliest, d.deadline);
    return new Promise((resolve) => {
      const timer = Number.isFinite(earliest) ? setTimeout(() => this.sweep(), Math.max(0, earliest - Date.now()) + 1) : undefined;
      timer?.unref();
      this.#waiters.push(() => {
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Forgets deliveries whose lease ran out: the message is back in the queue and counts no more. */
  sweep(): void {
    const now = Date.now();
    for (const d of this.held) if (d.deadline <= now) this.release(d);
    this.wake();
  }

  /** Sleeps, waking early on stop or close. */
  pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
