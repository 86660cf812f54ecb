/**
 * Helpers of the in-process reliability cases (R8, R9 E2/E3/E5, R10, R12, T6, T7): core's real
 * client and workers run in the test process against a private broker, and a `Recorder` keeps what
 * they did (handler starts and ends, worker and broker events) so a test waits on events, not sleeps.
 */
import type { Broker, CloseOptions, Worker, WorkerEventMap } from "@jobs/core";
import { WORKER_EVENTS } from "@jobs/core";
import type { BrokerCapabilities, BrokerEventMap, Delivery } from "@jobs/core/adapter";
import { it } from "vitest";
import { type BrokerSpec, createBroker } from "./adapters.js";
import { writeReport } from "./report.js";

/** One thing that happened, in order. */
export interface Entry {
  /** `start` / `done` (handler), a worker event name, or `broker:<event>`. */
  readonly kind: string;
  /** Job id, when the entry concerns a job. */
  readonly id?: string;
  /** Attempt of the job, when known. */
  readonly attempt?: number;
  /** Which worker (or broker) it came from. */
  readonly source: string;
  /** ms since the epoch. */
  readonly t: number;
  /** Anything else worth keeping (an error, a message). */
  readonly data?: unknown;
}

interface Waiter {
  readonly check: () => boolean;
  readonly resolve: () => void;
}

/** An in-memory ledger of one scenario; `until` resolves when a condition on it holds. */
export class Recorder {
  readonly entries: Entry[] = [];
  readonly #waiters = new Set<Waiter>();

  /** Appends an entry and wakes the waiters whose condition now holds. */
  add(entry: Omit<Entry, "t">): void {
    this.entries.push({ ...entry, t: Date.now() });
    for (const w of this.#waiters) {
      if (w.check()) {
        this.#waiters.delete(w);
        w.resolve();
      }
    }
  }

  /** Entries of a kind (optionally of one job). */
  of(kind: string, id?: string): Entry[] {
    return this.entries.filter((e) => e.kind === kind && (id === undefined || e.id === id));
  }

  /** Resolves once `check()` holds (checked now and after every new entry); rejects after `timeoutMs` naming `what`. */
  until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        check,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`[reliability] timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  /** Records every event of a worker under `source`. */
  watchWorker(worker: Worker<unknown>, source: string): void {
    for (const name of WORKER_EVENTS) {
      worker.on(name, (event: WorkerEventMap[typeof name]) => {
        const job = (event as { job?: { id: string; attempt: number } }).job;
        this.add({ kind: name, source, data: event, ...(job === undefined ? {} : { id: job.id, attempt: job.attempt }) });
      });
    }
  }

  /** Records every event of a broker as `broker:<event>` under `source`. */
  watchBroker(broker: Broker, source: string): void {
    const names: (keyof BrokerEventMap)[] = ["config-warning", "disconnected", "reconnected", "insecure-connection", "error"];
    for (const name of names) broker.on(name, (event) => this.add({ kind: `broker:${name}`, source, data: event }));
  }

  /** How many ids started more than once, and the total number of extra starts. */
  duplicates(): { readonly ids: number; readonly extra: number } {
    const counts = new Map<string, number>();
    for (const e of this.of("start")) counts.set(e.id as string, (counts.get(e.id as string) ?? 0) + 1);
    let ids = 0;
    let extra = 0;
    for (const n of counts.values())
      if (n > 1) {
        ids++;
        extra += n - 1;
      }
    return { ids, extra };
  }
}

/** Anything with a worker's `close`. */
interface Closable {
  close(options?: CloseOptions): Promise<void>;
}

/** Brokers opened by a scenario, closed together at its end (errors of an already broken one ignored). */
export class BrokerSet {
  readonly #brokers: Broker[] = [];
  readonly #workers: Closable[] = [];
  constructor(readonly spec: BrokerSpec) {}

  /** A new broker on the spec (own connection), with adapter option `overrides`. */
  open(overrides: Readonly<Record<string, unknown>> = {}): Broker {
    const broker = createBroker(this.spec, overrides);
    this.#brokers.push(broker);
    return broker;
  }

  /** Tracks a worker so `close` closes it first. */
  track<W extends Closable>(worker: W): W {
    this.#workers.push(worker);
    return worker;
  }

  /** Closes workers (short timeout), then brokers. */
  async close(): Promise<void> {
    await Promise.allSettled(this.#workers.splice(0).map((w) => w.close({ timeout: 1_000 })));
    await Promise.allSettled(this.#brokers.splice(0).map((b) => b.close()));
  }
}

/** Blocks this thread (and its event loop) for `ms` without using the CPU. */
export function blockEventLoop(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A short unique queue name for one scenario (valid on every adapter). */
export function queueName(tag: string): string {
  return `${tag.replace(/[^A-Za-z0-9]/g, "")}${Math.random().toString(36).slice(2, 7)}`;
}

/** What `instrument` counted on the deliveries of one broker. */
export interface DeliveryCounters {
  deliveries: number;
  /** Deliveries whose `deliveryCount` was above 1 (handed out again after a lease or connection loss). */
  redeliveries: number;
  extensions: number;
  extensionFailures: number;
}

/** Fresh counters. */
export const deliveryCounters = (): DeliveryCounters => ({ deliveries: 0, redeliveries: 0, extensions: 0, extensionFailures: 0 });

/**
 * The same broker, seen through a window that counts deliveries and lease extensions, and that
 * may declare narrower capabilities (R8-L5 lowers `maxDelayMs` on adapters without an option for
 * it, as RELIABILITY.md R8 prescribes). Every call still reaches the real broker.
 */
export function instrument(broker: Broker, counters: DeliveryCounters, capabilities: Partial<BrokerCapabilities> = {}): Broker {
  const caps: BrokerCapabilities = { ...broker.capabilities, ...capabilities };
  const consume: Broker["consume"] = (queue, options, onDelivery) =>
    broker.consume(queue, options, (d) => {
      counters.deliveries++;
      if (d.deliveryCount > 1) counters.redeliveries++;
      const wrapped: Delivery = {
        body: d.body,
        deliveryCount: d.deliveryCount,
        ...(d.local === undefined ? {} : { local: d.local }),
        ack: () => d.ack(),
        retry: (next) => d.retry(next),
        defer: (ms) => d.defer(ms),
        deadLetter: (record) => d.deadLetter(record),
        extendLease: (ms) => {
          counters.extensions++;
          return d.extendLease(ms).catch((error: unknown) => {
            counters.extensionFailures++;
            throw error;
          });
        },
      };
      onDelivery(wrapped);
    });
  return new Proxy(broker, {
    get(target, prop) {
      if (prop === "capabilities") return caps;
      if (prop === "consume") return consume;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** A case that does not apply to this adapter: its report says why (verdict "skip"), and vitest shows it skipped by name. */
export function skipCase(test: string, adapter: string, reason: string): void {
  writeReport({ test, adapter, seed: 0, figures: {}, bars: [], verdict: "skip", reason });
  it.skip(`${test} skipped: ${reason}`, () => {});
}
