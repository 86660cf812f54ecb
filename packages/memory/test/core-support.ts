/**
 * Shared set-up of the core tests that run on the real in-memory broker: unique queue names and
 * brokers/workers that are closed when the test ends (workers first, then brokers).
 */
import { createClient, createWorker, WORKER_EVENTS, type Worker, type WorkerOptions } from "@jobs/core";
import { decodeEnvelope, type Envelope } from "@jobs/core/adapter";
import { onTestFinished } from "vitest";
import { createMemoryBroker, type MemoryBroker, type MemoryBrokerOptions } from "../src/index.js";

let counter = 0;

/** A queue name no other test uses (1-63 characters, no "__"). */
export function uniqueQueue(label: string): string {
  counter++;
  return `${label.slice(0, 30)}-${process.pid}-${counter}`;
}

/** Brokers and workers created through it are closed when the current test finishes. */
export interface Scope {
  broker(options?: MemoryBrokerOptions): MemoryBroker;
  client(broker: MemoryBroker, maxPayloadBytes?: number): ReturnType<typeof createClient>;
  worker<Ctx = undefined>(options: WorkerOptions<Ctx>): Worker<Ctx>;
}

export function scope(): Scope {
  const brokers: MemoryBroker[] = [];
  const workers: Worker<unknown>[] = [];
  onTestFinished(async () => {
    await Promise.all(workers.map((w) => w.close({ timeout: 0 })));
    await Promise.all(brokers.map((b) => b.close()));
  });
  return {
    broker(options = {}) {
      const broker = createMemoryBroker(options);
      brokers.push(broker);
      return broker;
    },
    client(broker, maxPayloadBytes) {
      return createClient(maxPayloadBytes === undefined ? { broker } : { broker, maxPayloadBytes });
    },
    worker<Ctx>(options: WorkerOptions<Ctx>): Worker<Ctx> {
      const worker = createWorker(options);
      workers.push(worker as Worker<unknown>);
      return worker;
    },
  };
}

/** One line per worker event, "event:attempt", grouped by job id. */
export function eventLog(worker: Pick<Worker<unknown>, "on">): Map<string, string[]> {
  const log = new Map<string, string[]>();
  // Every job transition; "error" is not about one job.
  for (const name of WORKER_EVENTS.filter((n) => n !== "error")) {
    worker.on(name, (event) => {
      const job = (event as { job?: { id: string; attempt: number } }).job;
      const id = job?.id ?? "?";
      const list = log.get(id) ?? [];
      list.push(`${name}:${job?.attempt ?? "-"}`);
      log.set(id, list);
    });
  }
  return log;
}

/** A promise with its resolve function, to hold handlers until the test lets them go. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Reads the next ready message of a physical queue through a consumer of its own, then puts it back. */
export async function peek(broker: MemoryBroker, queue: string): Promise<Envelope> {
  let resolve!: (body: string) => void;
  const taken = new Promise<string>((r) => {
    resolve = r;
  });
  const subscription = await broker.consume(queue, { prefetch: 1, leaseMs: 60_000 }, (delivery) => {
    resolve(delivery.body);
    delivery.defer(0).catch(() => {});
  });
  try {
    return decodeEnvelope(await taken, Number.POSITIVE_INFINITY);
  } finally {
    await subscription.stop();
  }
}
