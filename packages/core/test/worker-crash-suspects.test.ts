/**
 * Crash suspects (src/internal/worker/suspects.ts, docs/reliability.md R4-H8): a job that kills its worker
 * process must not take the delivery counts of the jobs beside it up with its own. A "process" here
 * is a worker with its own connection to the shared memory server; its crash closes that connection
 * without settling anything, so the server hands every delivery it held out again with its count
 * raised, as a broker does when a worker process dies.
 */
import { createMemoryBroker } from "@jobs/memory";
import { describe, expect, it } from "vitest";
import { defineJob, type Worker } from "../src/index.js";
import { waitFor } from "../src/testing/index.js";
import { deliverAndDie, fixture, gate } from "./support.js";

describe("worker: crash suspects", () => {
  it("a redelivered job runs alone, so a job crashing its worker does not take it along; the poison is dead-lettered", async () => {
    const { broker: server, queue, client, scope: t } = fixture("crash-suspects");
    const job = defineJob<string>({ name: "maybe-crashy", queue, maxAttempts: 5 });
    // The innocent was already held by two consumers that died (delivered 3 times with
    // maxDeliveries 3: one more crash while it is in flight and it is dead-lettered), then the poison
    // arrives behind it. Run together, the poison's first crash would take the innocent's count to 4.
    await client.enqueue(job, "innocent", { id: "innocent" });
    for (let i = 0; i < 2; i++) await deliverAndDie(server, queue);
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

  it("suspects buffered beside the one that runs go back first, their counts neither raised nor reset", async () => {
    const { broker: server, queue, client, scope: t } = fixture("crash-suspects-buffered");
    const job = defineJob<string>({ name: "maybe-crashy", queue, maxAttempts: 5 });
    // Three jobs a dead consumer held: each is delivered a second time, at maxDeliveries 2, so one
    // more crash while it is held gets it dead-lettered. The poison (critical) is the suspect that
    // runs first; the two innocents would be buffered beside it when it crashes.
    await client.enqueue(job, "innocent", { id: "innocent-a" });
    await client.enqueue(job, "innocent", { id: "innocent-b" });
    await client.enqueue(job, "poison", { id: "poison", priority: "critical" });
    await deliverAndDie(server, queue, 3);
    const outcomes: string[] = [];
    const runs: string[] = [];
    for (let generation = 1; generation <= 6 && outcomes.length < 3; generation++) {
      const broker = createMemoryBroker({ server: server.server });
      let onCrash: () => void = () => {};
      const crash = new Promise<void>((resolve) => {
        onCrash = resolve;
      });
      const worker = t.worker({ broker, concurrency: 3, prefetch: 3, maxDeliveries: 2 });
      worker.handle(job, (payload, ctx) => {
        runs.push(ctx.job.id);
        if (payload === "poison") {
          void broker.close().then(onCrash);
          return new Promise(() => {});
        }
        return undefined;
      });
      const settledHere = new Promise<void>((resolve) => {
        const done = (line: string): void => {
          outcomes.push(line);
          if (outcomes.length === 3) resolve();
        };
        worker.on("job.succeeded", (e) => done(`${e.job.id}:succeeded`));
        worker.on("job.dead-lettered", (e) => done(`${e.job?.id}:dead-lettered:${e.reason}`));
      });
      await worker.start();
      await Promise.race([crash, settledHere]);
    }
    expect(outcomes.sort()).toEqual(["innocent-a:succeeded", "innocent-b:succeeded", "poison:dead-lettered:crash-loop"]);
    // The poison ran once (its second delivery) and its third was dead-lettered unrun; each innocent ran once.
    expect(runs.filter((id) => id === "poison")).toEqual(["poison"]);
    expect(runs.filter((id) => id !== "poison").sort()).toEqual(["innocent-a", "innocent-b"]);
    // The dead letter starts counting afresh: requeued, the job would be delivered as a first delivery.
    const [dead] = await server.listDeadLetters(queue, { limit: 10 });
    expect(JSON.parse(dead?.body ?? "{}").priorDeliveries).toBeUndefined();
  });

  it("while a suspect runs, the worker takes no deliveries (its consumers pause) and resumes after", async () => {
    // maxDeliveries 3: a 2nd delivery is a suspect.
    const r = await redeliveredThenFresh("crash-suspects-pause", 3);
    // Published while the suspect runs: the paused worker leaves it waiting in the queue.
    await new Promise((resolve) => setImmediate(resolve));
    expect(await r.server.counts(r.queue)).toMatchObject({ waiting: 1, active: 1 });
    r.release.open();
    await r.fresh;
    expect(r.order).toEqual(["start:redelivered", "end:redelivered", "start:fresh", "end:fresh"]);
  });

  it("below the suspect threshold (above half of maxDeliveries) a redelivered job runs beside others", async () => {
    // The default maxDeliveries (10): a job is a suspect from its 6th delivery; this is its 2nd.
    const r = await redeliveredThenFresh("crash-suspects-threshold", undefined);
    // Not a suspect: the fresh job starts and ends while the redelivered one still runs.
    await r.fresh;
    expect(r.order).toEqual(["start:redelivered", "start:fresh", "end:fresh"]);
    r.release.open();
    await waitFor(() => r.order.length === 4);
    expect(r.order.at(-1)).toBe("end:redelivered");
  });
});

/**
 * A job delivered once to a consumer that died (its 2nd delivery comes next), a worker (concurrency
 * 4) that runs it until `release` opens, and a fresh job enqueued once it runs; `fresh` resolves
 * when the fresh job has succeeded. `order` records each start and end.
 */
async function redeliveredThenFresh(name: string, maxDeliveries: number | undefined) {
  const { broker: server, queue, client, scope: t } = fixture(name);
  const job = defineJob<string>({ name: "redelivered-or-not", queue });
  await client.enqueue(job, "redelivered", { id: "redelivered" });
  await deliverAndDie(server, queue);
  const broker = createMemoryBroker({ server: server.server });
  const options = { broker, concurrency: 4, prefetch: 4 };
  const worker = t.worker(maxDeliveries === undefined ? options : { ...options, maxDeliveries });
  const release = gate();
  const running = gate();
  const order: string[] = [];
  worker.handle(job, async (payload) => {
    order.push(`start:${payload}`);
    if (payload === "redelivered") {
      running.open();
      await release.promise;
    }
    order.push(`end:${payload}`);
  });
  const fresh = new Promise<void>((resolve) => {
    worker.on("job.succeeded", (e) => {
      if (e.job.id === "fresh") resolve();
    });
  });
  await worker.start();
  await running.promise;
  await client.enqueue(job, "fresh", { id: "fresh" });
  return { server, queue, order, release, fresh };
}
