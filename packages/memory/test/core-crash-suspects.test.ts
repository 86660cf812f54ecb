/**
 * Crash suspects (core internal/suspects.ts, RELIABILITY.md R4-H8): a job that kills its worker
 * process must not take the delivery counts of the jobs beside it up with its own. A "process" here
 * is a worker with its own connection to the shared memory server; its crash closes that connection
 * without settling anything, so the server hands every delivery it held out again with its count
 * raised, as a broker does when a worker process dies.
 */
import { defineJob, type Worker } from "@jobs/core";
import { describe, expect, it } from "vitest";
import { createMemoryBroker } from "../src/index.js";
import { scope, uniqueQueue } from "./core-support.js";

describe("worker: crash suspects", () => {
  it("a redelivered job runs alone, so a job crashing its worker does not take it along; the poison is dead-lettered", async () => {
    const t = scope();
    const server = t.broker();
    const queue = uniqueQueue("crash-suspects");
    const job = defineJob<string>({ name: "maybe-crashy", queue, maxAttempts: 5 });
    const client = t.client(server);
    // The innocent was already held by two consumers that died (delivered 3 times with
    // maxDeliveries 3: one more crash while it is in flight and it is dead-lettered), then the poison
    // arrives behind it. Run together, the poison's first crash would take the innocent's count to 4.
    await client.enqueue(job, "innocent", { id: "innocent" });
    for (let i = 0; i < 2; i++) {
      const doomed = createMemoryBroker({ server: server.server });
      await new Promise<void>((resolve) => {
        void doomed.consume(queue, { prefetch: 1, leaseMs: 60_000 }, () => {
          void doomed.close().then(resolve);
        });
      });
    }
    await client.enqueue(job, "poison", { id: "poison" });
    const outcomes: string[] = [];
    const poisonRuns: number[] = [];
    let innocentRuns = 0;
    for (let generation = 1; generation <= 6 && outcomes.length < 2; generation++) {
      const broker = createMemoryBroker({ server: server.server });
      let crashed = false;
      let onCrash: () => void = () => {};
      const crash = new Promise<void>((resolve) => {
        onCrash = resolve;
      });
      const worker: Worker<undefined> = t.worker({ broker, concurrency: 2, prefetch: 2, maxDeliveries: 3 });
      worker.handle(job, async (payload, ctx) => {
        if (payload === "poison") {
          poisonRuns.push(generation);
          crashed = true;
          // The process dies: its connection goes, nothing it held is settled.
          void broker.close().then(onCrash);
          return new Promise(() => {});
        }
        innocentRuns++;
        // A turn of the event loop: a poison started beside it crashes the process meanwhile.
        await new Promise((resolve) => setImmediate(resolve));
        if (crashed) return new Promise(() => {});
        expect(ctx.job.attempt).toBe(1);
        return undefined;
      });
      const settledHere = new Promise<void>((resolve) => {
        worker.on("job.succeeded", (e) => {
          outcomes.push(`${e.job.id}:succeeded`);
          if (outcomes.length === 2) resolve();
        });
        worker.on("job.dead-lettered", (e) => {
          outcomes.push(`${e.job?.id}:dead-lettered:${e.reason}`);
          if (outcomes.length === 2) resolve();
        });
      });
      await worker.start();
      await Promise.race([crash, settledHere]);
    }
    expect(outcomes.sort()).toEqual(["innocent:succeeded", "poison:dead-lettered:crash-loop"]);
    // Delivered 1, 2 and 3 times, crashing each time; the fourth delivery is dead-lettered unrun.
    expect(poisonRuns).toEqual([1, 2, 3]);
    // Alone, before the poison started.
    expect(innocentRuns).toBe(1);
  });
});
