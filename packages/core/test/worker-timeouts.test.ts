import { describe, expect, it } from "vitest";
import type { ConsumeOptions } from "../src/adapter/index.js";
import { defineJob, JobTimeoutError, type LogFields } from "../src/index.js";
import { waitFor, waitForEvent } from "../src/testing/index.js";
import { aborted, deadLetters, fixture, gate, noDelay, uniqueQueue } from "./support.js";

/** Counts handlers inside their body: how many now, the most at once, and the order they came and went. */
function ledger(): {
  enter(tag: string): void;
  leave(tag: string): void;
  readonly now: number;
  readonly most: number;
  readonly log: string[];
} {
  let now = 0;
  let most = 0;
  const log: string[] = [];
  return {
    enter(tag) {
      now++;
      most = Math.max(most, now);
      log.push(`start ${tag}`);
    },
    leave(tag) {
      now--;
      log.push(`end ${tag}`);
    },
    get now() {
      return now;
    },
    get most() {
      return most;
    },
    log,
  };
}

/** Spins the CPU for `ms` without yielding: a synchronous, CPU-bound handler. */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}

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

  it("never runs more than concurrency handlers when every handler ignores its signal", async () => {
    const f = fixture("overdue-slots");
    const job = f.job<{ n: number }>("overdue.slots", { timeout: 30, maxAttempts: 1 });
    const hold = gate();
    const count = ledger();
    const worker = f.worker({ concurrency: 4, overdueAfter: 20 }).handle(job, async ({ n }) => {
      count.enter(String(n));
      try {
        await hold.promise; // ignores its signal
      } finally {
        count.leave(String(n));
      }
    });
    const overdue: string[] = [];
    worker.on("job.overdue", (e) => {
      overdue.push(e.job.id);
      expect(e.timeoutMs).toBe(30);
      expect(e.overdueMs).toBeGreaterThanOrEqual(20);
    });
    await worker.start();
    await f.client.enqueueMany(Array.from({ length: 10 }, (_, n) => ({ job, payload: { n } })));
    // Four handlers time out and are reported overdue: had their slots been freed, the other six would have started.
    await waitFor(() => overdue.length === 4);
    expect(count.now).toBe(4);
    expect(worker.running).toBe(4);
    // Their attempts failed at the timeout (the last one: dead-lettered) while the handlers still run.
    expect(await deadLetters(f.broker, f.queue, 4)).toHaveLength(4);
    hold.open();
    await waitFor(() => count.log.filter((l) => l.startsWith("end")).length === 10);
    expect(count.most).toBe(4);
    expect(count.log.filter((l) => l.startsWith("start"))).toHaveLength(10);
    await waitFor(() => worker.running === 0);
  });

  it("starts the retry of a job whose timed-out handler still runs only after that handler ends", async () => {
    const f = fixture("overdue-retry");
    const job = f.job<null>("overdue.retry", { timeout: 30, maxAttempts: 2, backoff: noDelay });
    const hold = gate();
    const count = ledger();
    const worker = f.worker({ concurrency: 2 }).handle(job, async (_p, { job: info }) => {
      count.enter(String(info.attempt));
      try {
        if (info.attempt === 1) await hold.promise;
      } finally {
        count.leave(String(info.attempt));
      }
    });
    const deferred = waitForEvent(worker, "job.deferred", (e) => e.job.attempt === 2);
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded");
    await f.client.enqueue(job, null);
    // A slot is free, but attempt 2 is given back while attempt 1's handler runs.
    expect((await deferred).delayMs).toBe(1_000);
    expect(count.log).toEqual(["start 1"]);
    hold.open();
    expect((await succeeded).job.attempt).toBe(2);
    expect(count.log).toEqual(["start 1", "end 1", "start 2", "end 2"]);
  });

  it("with overlapRetries, starts the retry beside the timed-out handler", async () => {
    const f = fixture("overdue-overlap");
    const job = f.job<null>("overdue.overlap", { timeout: 30, maxAttempts: 2, backoff: noDelay });
    const hold = gate();
    const count = ledger();
    const worker = f.worker({ concurrency: 2, overlapRetries: true }).handle(job, async (_p, { job: info }) => {
      count.enter(String(info.attempt));
      try {
        if (info.attempt === 1) await hold.promise;
      } finally {
        count.leave(String(info.attempt));
      }
    });
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded");
    await f.client.enqueue(job, null);
    expect((await succeeded).job.attempt).toBe(2);
    expect(count.log).toEqual(["start 1", "start 2", "end 2"]);
    expect(count.most).toBe(2);
    hold.open();
    await waitFor(() => worker.running === 0);
  });

  it("frees the slot at once for a handler that ends as soon as its signal aborts (no deferral of its retry)", async () => {
    const f = fixture("overdue-prompt");
    const job = f.job<null>("overdue.prompt", { timeout: 30, maxAttempts: 2, backoff: noDelay });
    const worker = f.worker({ concurrency: 2 }).handle(job, async (_p, ctx) => {
      if (ctx.job.attempt === 1) await aborted(ctx.signal);
    });
    const events: string[] = [];
    for (const name of ["job.deferred", "job.overdue", "job.failed", "job.succeeded"] as const) {
      worker.on(name, (e) => events.push(`${name}:${e.job.attempt}`));
    }
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded");
    await f.client.enqueue(job, null);
    await succeeded;
    expect(events).toEqual(["job.failed:1", "job.succeeded:2"]);
  });

  it("times out a synchronous handler that returns past its deadline, and discards its result", async () => {
    const f = fixture("sync-timeout");
    const job = f.job<null>("sync.timeout", { timeout: 20, maxAttempts: 2, backoff: noDelay });
    let signal: AbortSignal | undefined;
    const worker = f.worker().handle(job, (_p, ctx) => {
      if (ctx.job.attempt === 1) {
        signal = ctx.signal;
        spin(60); // CPU-bound: no timer can fire while it runs
        return "late";
      }
      return "in time";
    });
    const failed = waitForEvent(worker, "job.failed");
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded");
    await f.client.enqueue(job, null);
    const failure = await failed;
    expect(failure.error.code).toBe("job-timeout");
    expect(failure.error.message).toContain("synchronous work cannot be interrupted");
    expect(failure.willRetry).toBe(true);
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBeInstanceOf(JobTimeoutError);
    expect((await succeeded).job.attempt).toBe(2);
  });

  it("times out an async handler that blocked the event loop past its deadline before resolving", async () => {
    const f = fixture("blocked-timeout");
    const job = f.job<null>("blocked.timeout", { timeout: 20, maxAttempts: 1 });
    const worker = f.worker().handle(job, async () => {
      spin(60);
    });
    const dead = waitForEvent(worker, "job.dead-lettered");
    await worker.start();
    await f.client.enqueue(job, null);
    const event = await dead;
    expect(event.reason).toBe("max-attempts");
    expect(event.error.code).toBe("job-timeout");
  });

  it("logs an overdue handler as JOBS_JOB_OVERDUE (warn) to the given logger, without the payload", async () => {
    const f = fixture("overdue-log");
    const job = f.job<{ card: string }>("overdue.log", { timeout: 20, maxAttempts: 1 });
    const hold = gate();
    const warned: { fields: LogFields; message: string }[] = [];
    const logger = {
      error: () => {},
      warn: (fields: LogFields, message: string) => {
        warned.push({ fields, message });
      },
    };
    const worker = f.worker({ overdueAfter: 10, logger }).handle(job, async () => {
      await hold.promise;
    });
    await worker.start();
    const { id } = await f.client.enqueue(job, { card: "payload-secret-4242" });
    await waitFor(() => warned.some((w) => w.fields.code === "JOBS_JOB_OVERDUE"));
    const entry = warned.find((w) => w.fields.code === "JOBS_JOB_OVERDUE");
    expect(entry?.message).toContain(`job overdue.log ${id} timed out`);
    expect(JSON.stringify(entry)).not.toContain("payload-secret");
    hold.open();
    await waitFor(() => worker.running === 0);
  });

  it("rejects a bad overlapRetries or overdueAfter, naming the field", () => {
    const f = fixture("overdue-options");
    expect(() => f.worker({ overlapRetries: "yes" as unknown as boolean })).toThrow(/overlapRetries/);
    expect(() => f.worker({ overdueAfter: -1 })).toThrow(/overdueAfter/);
  });
});
