import { describe, expect, it } from "vitest";
import { BrokerClosedError } from "../src/index.js";
import { waitFor, waitForEvent } from "../src/testing/index.js";
import { aborted, fixture, gate } from "./support.js";

describe("worker: shutdown", () => {
  it("close() while idle resolves at once", async () => {
    const f = fixture("idle");
    const worker = f.worker({ shutdownTimeout: "30s" }).handle(f.job("i"), () => {});
    await worker.start();
    const started = performance.now();
    await worker.close();
    expect(performance.now() - started).toBeLessThan(500);
    await worker.close();
  });

  it("on close, aborts a running job after the timeout and hands it back without counting an attempt", async () => {
    const f = fixture("shutdown");
    const job = f.job<null>("stubborn", { maxAttempts: 5 });
    const reasons: unknown[] = [];
    const failures: unknown[] = [];
    const first = f.worker().handle(job, async (_p, ctx) => {
      await aborted(ctx.signal);
      reasons.push(ctx.signal.reason);
      throw ctx.signal.reason;
    });
    first.on("job.failed", (e) => failures.push(e));
    const started = waitForEvent(first, "job.started");
    await first.start();
    const { id } = await f.client.enqueue(job, null);
    await started;
    await first.close({ timeout: 50 });
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(BrokerClosedError);
    expect(failures).toEqual([]);
    await waitFor(async () => (await f.broker.counts(f.queue)).waiting === 1);

    const attempts: number[] = [];
    const second = f.worker().handle(job, (_p, ctx) => {
      attempts.push(ctx.job.attempt);
    });
    const done = waitForEvent(second, "job.succeeded");
    await second.start();
    expect((await done).job.id).toBe(id);
    expect(attempts).toEqual([1]);
  });

  it("a second close() with a shorter timeout aborts running jobs at once (second SIGTERM)", async () => {
    const f = fixture("second-close");
    const job = f.job<null>("long", { maxAttempts: 5 });
    const succeeded: unknown[] = [];
    const worker = f.worker().handle(job, async (_p, ctx) => {
      await aborted(ctx.signal);
      throw ctx.signal.reason;
    });
    worker.on("job.succeeded", (e) => succeeded.push(e));
    const started = waitForEvent(worker, "job.started");
    await worker.start();
    await f.client.enqueue(job, null);
    await started;
    const t0 = performance.now();
    const first = worker.close({ timeout: "30s" });
    const second = worker.close({ timeout: 0 });
    expect(second).toBe(first);
    await second;
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(succeeded).toEqual([]);
    await waitFor(async () => (await f.broker.counts(f.queue)).waiting === 1);
  });

  it("on close, lets a running job finish within the timeout and acks it", async () => {
    const f = fixture("graceful");
    const job = f.job<null>("quick");
    const release = gate();
    let wasAborted = false;
    const worker = f.worker().handle(job, async (_p, ctx) => {
      await release.promise;
      wasAborted = ctx.signal.aborted;
    });
    const started = waitForEvent(worker, "job.started");
    const succeeded = waitForEvent(worker, "job.succeeded");
    await worker.start();
    await f.client.enqueue(job, null);
    await started;
    const closing = worker.close({ timeout: "5s" });
    release.open();
    await closing;
    await succeeded;
    expect(wasAborted).toBe(false);
    expect(await f.broker.counts(f.queue)).toEqual({ waiting: 0, delayed: 0, active: 0, dead: 0 });
  });

  it("on close, hands back jobs it holds but has not started", async () => {
    const f = fixture("buffered");
    const job = f.job<number>("held");
    const release = gate();
    const ran: number[] = [];
    const worker = f.worker({ concurrency: 1 }).handle(job, async (n) => {
      ran.push(n);
      await release.promise;
    });
    const started = waitForEvent(worker, "job.started");
    await worker.start();
    await f.client.enqueueMany([0, 1, 2].map((payload) => ({ job, payload })));
    await started;
    const closing = worker.close({ timeout: "5s" });
    release.open();
    await closing;
    expect(ran).toEqual([0]);
    await waitFor(async () => (await f.broker.counts(f.queue)).waiting === 2);
  });
});
