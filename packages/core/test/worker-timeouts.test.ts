import { describe, expect, it } from "vitest";
import type { ConsumeOptions } from "../src/adapter/index.js";
import { defineJob, JobTimeoutError } from "../src/index.js";
import { waitForEvent } from "../src/testing/index.js";
import { aborted, fixture, noDelay, uniqueQueue } from "./support.js";

describe("worker: timeouts", () => {
  it("tells the broker the longest handler timeout registered for each queue it consumes", async () => {
    const { broker, queue: a, worker: newWorker } = fixture("timeouts-a");
    const seen = new Map<string, ConsumeOptions>();
    const consume = broker.consume.bind(broker);
    // The memory broker stays real; this only records what the worker asks of it.
    broker.consume = (queue, options, onDelivery) => {
      seen.set(queue, options);
      return consume(queue, options, onDelivery);
    };
    const b = uniqueQueue("timeouts-b");
    const c = uniqueQueue("timeouts-c");
    const worker = newWorker({ queues: [a, b, c] })
      .handle(defineJob({ name: "short", queue: a, timeout: "2m" }), () => {})
      .handle(defineJob({ name: "long", queue: a, timeout: "45m" }), () => {})
      .handle(defineJob({ name: "default", queue: b }), () => {});
    await worker.start();
    expect(seen.get(a)?.jobTimeoutMs).toBe(45 * 60_000);
    expect(seen.get(b)?.jobTimeoutMs).toBe(30 * 60_000);
    // No handler registered for c: the worker cannot know, and says nothing.
    expect(seen.get(c)).toBeDefined();
    expect(seen.get(c)?.jobTimeoutMs).toBeUndefined();
  });

  it("aborts the signal with JobTimeoutError when the job times out, and retries it", async () => {
    const f = fixture("timeout");
    const job = f.job<null>("slow", { timeout: 50, maxAttempts: 2, backoff: noDelay });
    const reasons: unknown[] = [];
    const worker = f.worker().handle(job, async (_p, ctx) => {
      if (ctx.job.attempt === 2) return;
      await aborted(ctx.signal);
      reasons.push(ctx.signal.reason);
    });
    const failed = waitForEvent(worker, "job.failed");
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded");
    await f.client.enqueue(job, null);
    const failure = await failed;
    expect(failure.error.code).toBe("job-timeout");
    expect(failure.durationMs).toBeGreaterThanOrEqual(45);
    expect((await succeeded).job.attempt).toBe(2);
    expect(reasons[0]).toBeInstanceOf(JobTimeoutError);
    expect((reasons[0] as JobTimeoutError).timeoutMs).toBe(50);
  });
});
