/**
 * Tools of the in-process cases (R4, R5, T1-T4, T10): core's real client and worker run in the
 * test process against a real broker; these only observe. `observe` wraps a broker so every
 * publish, delivery and settlement is recorded (the broker still does all the work), `recordEvents`
 * keeps every event line the library emitted, and `until` waits for a condition, re-checked on each
 * recorded event.
 */

import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Broker, Client, Worker } from "@jobs/core";
import { WORKER_EVENTS } from "@jobs/core";
import type { DeadLetterRecord, Delivery } from "@jobs/core/adapter";
import { delegating } from "./processes/wrappers.js";

/** How a delivery was settled. */
export type SettleKind = "ack" | "retry" | "defer" | "dead";

/** One delivery as the consumer got it, and how core settled it. */
export interface ObservedDelivery {
  readonly body: string;
  readonly deliveryCount: number;
  /** Date.now() when the adapter handed it to core. */
  readonly at: number;
  settled?: SettleKind;
  settledAt?: number;
  record?: DeadLetterRecord;
}

/** What `observe` saw. */
export interface Observation {
  /** Messages handed to `publish` (every retry and requeue counts too). */
  published: number;
  /** UTF-8 size of each published body, in order. */
  readonly publishedBytes: number[];
  readonly deliveries: ObservedDelivery[];
}

const listeners = new Set<() => void>();

/** Wakes every pending `until` (called on each recorded event and settlement). */
export function poke(): void {
  for (const l of [...listeners]) l();
}

/**
 * Resolves once `condition()` is true, re-checking it after every recorded event and settlement
 * (and every 250 ms, for conditions on broker state); rejects with `what` after `timeoutMs`.
 */
export function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  if (condition()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!condition()) return;
      cleanup();
      resolve();
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const interval = setInterval(check, 250);
    const cleanup = (): void => {
      clearTimeout(timer);
      clearInterval(interval);
      listeners.delete(check);
    };
    listeners.add(check);
  });
}

/** Wraps `broker` so that publishes, deliveries and settlements are recorded; everything else passes through. */
export function observe(broker: Broker): { broker: Broker; seen: Observation } {
  const seen: Observation = { published: 0, publishedBytes: [], deliveries: [] };
  const wrapDelivery = (d: Delivery): Delivery => {
    const o: ObservedDelivery = { body: d.body, deliveryCount: d.deliveryCount, at: Date.now() };
    seen.deliveries.push(o);
    const mark = (kind: SettleKind, record?: DeadLetterRecord) => () => {
      o.settled = kind;
      o.settledAt = Date.now();
      if (record !== undefined) o.record = record;
      poke();
    };
    return {
      get body() {
        return d.body;
      },
      get deliveryCount() {
        return d.deliveryCount;
      },
      get local() {
        return d.local;
      },
      ack: () => d.ack().then(mark("ack")),
      retry: (next) => d.retry(next).then(mark("retry")),
      defer: (ms) => d.defer(ms).then(mark("defer")),
      deadLetter: (record) => d.deadLetter(record).then(mark("dead", record)),
      extendLease: (ms) => d.extendLease(ms),
    };
  };
  const wrapped = delegating(broker, {
    publish: (queue, messages) => {
      seen.published += messages.length;
      for (const m of messages) seen.publishedBytes.push(Buffer.byteLength(m.body, "utf8"));
      return broker.publish(queue, messages);
    },
    consume: (queue, options, onDelivery) => broker.consume(queue, options, (d) => onDelivery(wrapDelivery(d))),
  });
  return { broker: wrapped, seen };
}

/** One event the library emitted, as the JSON line a logger would write. */
export interface EventLine {
  readonly source: "worker" | "client" | "broker";
  readonly event: string;
  readonly at: number;
  readonly data: Record<string, unknown>;
  /** `JSON.stringify({source, event, data})`: what the size bars measure. */
  readonly line: string;
}

/** Records every event of the worker, client and broker; returns the list (growing) and an unsubscribe. */
export function recordEvents(parts: { worker?: Worker<unknown>; client?: Client; broker?: Broker }): {
  lines: EventLine[];
  stop: () => void;
} {
  const lines: EventLine[] = [];
  const offs: (() => void)[] = [];
  const push = (source: EventLine["source"], event: string, data: unknown): void => {
    const d = (data ?? {}) as Record<string, unknown>;
    lines.push({ source, event, at: Date.now(), data: d, line: JSON.stringify({ source, event, data: d }) });
    poke();
  };
  if (parts.worker !== undefined) {
    const w = parts.worker;
    for (const e of WORKER_EVENTS) offs.push(w.on(e, (data) => push("worker", e, data)));
  }
  if (parts.client !== undefined) offs.push(parts.client.on("job.enqueued", (data) => push("client", "job.enqueued", data)));
  if (parts.broker !== undefined) {
    const b = parts.broker;
    for (const e of ["config-warning", "disconnected", "reconnected", "insecure-connection", "error"] as const)
      offs.push(b.on(e, (data) => push("broker", e, data)));
  }
  return {
    lines,
    stop: () => {
      for (const off of offs) off();
    },
  };
}

/** Byte length of the longest line. */
export function longestLine(lines: readonly EventLine[]): number {
  let max = 0;
  for (const l of lines) max = Math.max(max, Buffer.byteLength(l.line, "utf8"));
  return max;
}

let gcFn: (() => void) | undefined;

/** A full garbage collection (exposes V8's `gc` on first use, so vitest needs no `--expose-gc`). */
export function collectGarbage(): void {
  if (gcFn === undefined) {
    setFlagsFromString("--expose_gc");
    gcFn = runInNewContext("gc") as () => void;
  }
  gcFn();
  gcFn();
}

/** Unhandled rejections and uncaught exceptions seen while `fn` runs (the test process must survive them all). */
export async function countingProcessFaults<T>(fn: () => Promise<T>): Promise<{ result: T; unhandled: number }> {
  let unhandled = 0;
  const onRejection = (): void => {
    unhandled++;
  };
  process.on("unhandledRejection", onRejection);
  try {
    return { result: await fn(), unhandled };
  } finally {
    process.off("unhandledRejection", onRejection);
  }
}

/** A snapshot of `Object.prototype` (own keys and their values) to compare after hostile input. */
export function prototypeSnapshot(): Map<string | symbol, unknown> {
  const snap = new Map<string | symbol, unknown>();
  for (const key of Reflect.ownKeys(Object.prototype)) snap.set(key, Object.getOwnPropertyDescriptor(Object.prototype, key)?.value);
  return snap;
}

/** True when `Object.prototype` has the same own keys and values as in `before`, and `({}).polluted`/`.x` are unset. */
export function prototypeUnchanged(before: Map<string | symbol, unknown>): boolean {
  const now = prototypeSnapshot();
  if (now.size !== before.size) return false;
  for (const [key, value] of now) if (!before.has(key) || before.get(key) !== value) return false;
  const probe = {} as Record<string, unknown>;
  return probe.polluted === undefined && probe.x === undefined;
}

/** Sleeps; only for a scenario's own schedule (a handler that resolves at 1.5 s, a paced stream). */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
