/**
 * The consuming side: a consumer fetches for its free slots (one fetch in flight), sleeps while
 * its queue has nothing visible until a NOTIFY, the next due time or `maxIdle`, and hands
 * settlements to the broker's per-turn batch (one statement for every settlement of the turn).
 */
import {
  type BrokerEventMap,
  type ConsumeOptions,
  type DeadLetterRecord,
  type Delivery,
  type Emitter,
  LeaseLostError,
  type OutgoingMessage,
  type Subscription,
  serializeError,
} from "@jobs/core/adapter";

const LEASE_LOST = "[jobs] [postgres] the delivery's lease was lost (it expired or its consumer closed); it will be redelivered";

/** One settlement of a delivery, by its token. */
export type SettleOp =
  | { readonly kind: "ack"; readonly token: string }
  | { readonly kind: "extend"; readonly token: string; readonly ms: number }
  | { readonly kind: "retry"; readonly token: string; readonly body: string; readonly priority: number; readonly delayMs: number }
  | { readonly kind: "defer"; readonly token: string; readonly delayMs: number }
  | { readonly kind: "dead"; readonly token: string; readonly record: DeadLetterRecord }
  | { readonly kind: "release"; readonly token: string; readonly undo: boolean };

/** A fetched row. */
export interface FetchedRow {
  readonly token: string;
  readonly deliveries: number;
  readonly body: string;
  readonly ord: number;
  readonly was: string;
  readonly id: string;
}

/** What a consumer needs from its broker. */
export interface ConsumerHost {
  readonly events: Emitter<BrokerEventMap>;
  readonly maxIdleMs: number;
  /** Hands out up to `want` messages of `queue` under a lease of `leaseMs`. */
  fetch(queue: string, want: number, leaseMs: number): Promise<FetchedRow[]>;
  /** ms until the next message of `queue` becomes visible; undefined when it has none. */
  nextDue(queue: string): Promise<number | undefined>;
  /** Adds a settlement to this turn's batch; resolves true when it applied (the lease was held). */
  settle(op: SettleOp): Promise<boolean>;
  /** The consumer stopped: no more wake-ups. */
  stopped(consumer: PostgresConsumer): void;
}

export class PostgresConsumer implements Subscription {
  readonly queue: string;
  readonly #host: ConsumerHost;
  readonly #options: ConsumeOptions;
  readonly #onDelivery: (delivery: Delivery) => void;
  /** Tokens of the deliveries handed out and not yet settled. */
  readonly #held = new Set<string>();
  #fetching: Promise<void> | undefined;
  /** There may be something visible: set by a notification, a timer or a full fetch; cleared by a short one. */
  #wanted = true;
  #stopped = false;
  #paused = false;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;

  constructor(host: ConsumerHost, queue: string, options: ConsumeOptions, onDelivery: (delivery: Delivery) => void) {
    this.#host = host;
    this.queue = queue;
    this.#options = options;
    this.#onDelivery = onDelivery;
  }

  /** Something may be visible now (a NOTIFY, a reconnect): look. */
  kick(): void {
    this.#wanted = true;
    this.#pump();
  }

  #pump(): void {
    if (this.#stopped || this.#paused || this.#fetching !== undefined || !this.#wanted) return;
    const want = this.#options.prefetch - this.#held.size;
    if (want <= 0) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#fetching = this.#fetch(want).finally(() => {
      this.#fetching = undefined;
      this.#pump();
    });
  }

  async #fetch(want: number): Promise<void> {
    let rows: FetchedRow[];
    try {
      rows = await this.#host.fetch(this.queue, want, Math.ceil(this.#options.leaseMs));
      this.#failures = 0;
    } catch (error) {
      // PostgreSQL unreachable: the connection's events say so; look again after a pause.
      if (this.#failures++ === 0) this.#host.events.emit("error", { error: serializeError(error) });
      this.#sleep(Math.min(2_000, 100 * 2 ** Math.min(this.#failures, 5)));
      return;
    }
    rows.sort((x, y) => x.ord - y.ord || Number(x.was) - Number(y.was) || Number(x.id) - Number(y.id));
    for (const row of rows) {
      if (this.#stopped) {
        // Stopped while the fetch was out: back to the front, as if never handed out.
        void this.#host.settle({ kind: "release", token: row.token, undo: true }).catch(() => {});
        continue;
      }
      this.#held.add(row.token);
      this.#onDelivery(this.#delivery(row));
    }
    if (rows.length < want) {
      this.#wanted = false;
      const next = await this.#host.nextDue(this.queue).catch(() => undefined);
      if (!this.#wanted) this.#sleep(next === undefined ? this.#host.maxIdleMs : Math.min(this.#host.maxIdleMs, Math.max(0, next) + 5));
    }
  }

  #sleep(ms: number): void {
    if (this.#stopped) return;
    this.#wanted = false;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.kick();
    }, ms);
  }

  #delivery(row: FetchedRow): Delivery {
    const token = row.token;
    let settled = false;
    const settle = async (op: SettleOp): Promise<void> => {
      if (settled) throw new LeaseLostError(`${LEASE_LOST} (already settled)`);
      settled = true;
      this.#held.delete(token);
      let applied: boolean;
      try {
        applied = await this.#host.settle(op);
      } finally {
        this.#pump();
      }
      if (!applied) throw new LeaseLostError(LEASE_LOST);
    };
    return {
      body: row.body,
      deliveryCount: row.deliveries,
      ack: () => settle({ kind: "ack", token }),
      retry: (next: OutgoingMessage) =>
        settle({ kind: "retry", token, body: next.body, priority: next.priority, delayMs: Math.max(0, Math.ceil(next.delayMs)) }),
      defer: (delayMs: number) => settle({ kind: "defer", token, delayMs: Math.max(0, Math.ceil(delayMs)) }),
      deadLetter: (record: DeadLetterRecord) => settle({ kind: "dead", token, record }),
      extendLease: async (ms: number) => {
        if (settled) throw new LeaseLostError(`${LEASE_LOST} (already settled)`);
        if (!(await this.#host.settle({ kind: "extend", token, ms: Math.max(1, Math.ceil(ms)) }))) throw new LeaseLostError(LEASE_LOST);
      },
    };
  }

  /** The tokens this consumer holds unsettled (released when the broker closes). */
  releaseHeld(): Promise<unknown> {
    const held = [...this.#held];
    this.#held.clear();
    return Promise.allSettled(held.map((token) => this.#host.settle({ kind: "release", token, undo: false })));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#host.stopped(this);
    await this.#fetching;
  }

  async pause(): Promise<void> {
    this.#paused = true;
    clearTimeout(this.#timer);
    await this.#fetching;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.kick();
  }
}
