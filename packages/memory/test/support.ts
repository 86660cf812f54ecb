/**
 * Set-up of the memory adapter's own tests: unique queue names, and brokers and workers closed when
 * the test ends (workers first, then brokers). Core's behaviour tests have their own fixture in
 * packages/core/test/support.ts.
 */
import { createClient, createWorker, type Worker, type WorkerOptions } from "@jobs/core";
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
  client(broker: MemoryBroker): ReturnType<typeof createClient>;
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
    client: (broker) => createClient({ broker }),
    worker<Ctx>(options: WorkerOptions<Ctx>): Worker<Ctx> {
      const worker = createWorker(options);
      workers.push(worker as Worker<unknown>);
      return worker;
    },
  };
}
