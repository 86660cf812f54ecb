import { describe, expect, it } from "vitest";
import { defineJob } from "../src/index.js";
import { waitFor, waitForEvent } from "../src/testing/index.js";
import { fixture, gate } from "./support.js";

describe("worker: running jobs", () => {
  it("runs a job with its payload and info, then acks it", async () => {
    const f = fixture("run");
    const job = f.job<{ to: string }>("email.send", { maxAttempts: 4 });
    const seen: { payload: unknown; attempt: number; name: string; maxAttempts: number }[] = [];
    const worker = f.worker().handle(job, (payload, ctx) => {
      seen.push({ payload, attempt: ctx.job.attempt, name: ctx.job.name, maxAttempts: ctx.job.maxAttempts });
    });
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded");
    const { id } = await f.client.enqueue(job, { to: "ada@example.com" });
    expect((await succeeded).job.id).toBe(id);
    expect(seen).toEqual([{ payload: { to: "ada@example.com" }, attempt: 1, name: "email.send", maxAttempts: 4 }]);
    await waitFor(async () => (await f.broker.counts(f.queue)).active === 0);
    expect(await f.broker.counts(f.queue)).toEqual({ waiting: 0, delayed: 0, active: 0, dead: 0 });
  });

  it("never runs more jobs at once than its concurrency", async () => {
    const f = fixture("concurrency");
    const job = f.job<number>("slow");
    let running = 0;
    let maxRunning = 0;
    let done = 0;
    const release = gate();
    const worker = f.worker({ concurrency: 3 }).handle(job, async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await release.promise;
      await new Promise((resolve) => setImmediate(resolve));
      running--;
      done++;
    });
    await worker.start();
    await f.client.enqueueMany(Array.from({ length: 12 }, (_, i) => ({ job, payload: i })));
    await waitFor(() => running === 3);
    expect(worker.running).toBe(3);
    // Bounded window: with three handlers blocked, a fourth must not start.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(running).toBe(3);
    expect(maxRunning).toBe(3);
    release.open();
    await waitFor(() => done === 12);
    expect(maxRunning).toBe(3);
    expect(worker.running).toBe(0);
  });

  it.each([
    { prefetch: undefined, held: 3 },
    { prefetch: 8, held: 8 },
  ])("holds prefetch deliveries ($held with prefetch $prefetch) and runs only concurrency of them", async ({ prefetch, held }) => {
    const f = fixture("prefetch");
    const job = f.job<number>("slow");
    let running = 0;
    let done = 0;
    const release = gate();
    const worker = f.worker(prefetch === undefined ? { concurrency: 3 } : { concurrency: 3, prefetch }).handle(job, async () => {
      running++;
      await release.promise;
      running--;
      done++;
    });
    await worker.start();
    await f.client.enqueueMany(Array.from({ length: 12 }, (_, i) => ({ job, payload: i })));
    await waitFor(async () => running === 3 && (await f.broker.counts(f.queue)).active === held);
    expect(await f.broker.counts(f.queue)).toMatchObject({ waiting: 12 - held, active: held });
    expect(running).toBe(3);
    release.open();
    await waitFor(() => done === 12);
  });

  it("injects the worker's context into every handler", async () => {
    const f = fixture("context");
    const job = f.job<null>("ctx");
    const context = { db: { name: "pool" }, mailer: { sent: [] as string[] } };
    const contexts: unknown[] = [];
    const signals: AbortSignal[] = [];
    const worker = f.worker({ context }).handle(job, (_payload, ctx) => {
      contexts.push(ctx.context);
      signals.push(ctx.signal);
      ctx.context.mailer.sent.push("x");
    });
    await worker.start();
    await f.client.enqueue(job, null);
    await f.client.enqueue(job, null);
    await waitFor(() => contexts.length === 2);
    expect(contexts[0]).toBe(context);
    expect(contexts[1]).toBe(context);
    expect(context.mailer.sent).toEqual(["x", "x"]);
    expect(signals[0]).not.toBe(signals[1]);
    expect(signals.every((s) => s.aborted === false)).toBe(true);
  });

  it("runs the schema's output, after its transforms, in the handler", async () => {
    const f = fixture("transform");
    const schema = {
      "~standard": {
        version: 1 as const,
        vendor: "test",
        validate: (value: unknown) => ({ value: { n: Number((value as { n: string }).n) * 2 } }),
      },
    };
    const job = defineJob({ name: "t", queue: f.queue, schema });
    const seen: unknown[] = [];
    const worker = f.worker().handle(job, (payload) => {
      seen.push(payload);
    });
    await worker.start();
    await f.client.enqueue(job, { n: "21" } as never);
    await waitFor(() => seen.length === 1);
    expect(seen).toEqual([{ n: 42 }]);
  });

  it("delivers a payload nested as deep as the client accepts", async () => {
    const f = fixture("deep");
    const job = f.job<unknown>("deep", { maxAttempts: 1 });
    // 64 levels: the deepest payload enqueue accepts (65 is rejected with JobValidationError).
    const payload = Array.from({ length: 63 }).reduce<unknown>((inner) => [inner], []);
    const received: unknown[] = [];
    const worker = f.worker().handle(job, (p) => {
      received.push(p);
    });
    await worker.start();
    const outcome = Promise.race([waitForEvent(worker, "job.succeeded"), waitForEvent(worker, "job.dead-lettered")]);
    await f.client.enqueue(job, payload);
    const event = await outcome;
    expect("reason" in event ? `dead-lettered: ${event.reason}: ${event.error.message}` : "succeeded").toBe("succeeded");
    expect(received).toEqual([payload]);
  });
});
