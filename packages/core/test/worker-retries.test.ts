import { describe, expect, it } from "vitest";
import { decodeEnvelope } from "../src/adapter/index.js";
import { NonRetryableError, type WorkerEventMap } from "../src/index.js";
import { waitForEvent } from "../src/testing/index.js";
import { deadLetters, fixture, noDelay } from "./support.js";

describe("worker: retries", () => {
  it("retries a handler that throws a string, serializing it as NonError", async () => {
    const f = fixture("throw-string");
    const job = f.job<null>("s", { maxAttempts: 3, backoff: noDelay });
    const attempts: number[] = [];
    const failures: WorkerEventMap["job.failed"][] = [];
    const worker = f.worker().handle(job, (_p, ctx) => {
      attempts.push(ctx.job.attempt);
      if (ctx.job.attempt === 1) throw "boom";
    });
    worker.on("job.failed", (e) => failures.push(e));
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded");
    await f.client.enqueue(job, null);
    expect((await succeeded).job.attempt).toBe(2);
    expect(attempts).toEqual([1, 2]);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.error).toEqual({ name: "NonError", message: "boom" });
    expect(failures[0]?.willRetry).toBe(true);
  });

  it("retries a handler that throws undefined, then dead-letters it with the last error", async () => {
    const f = fixture("throw-undefined");
    const job = f.job<null>("u", { maxAttempts: 2, backoff: noDelay });
    let calls = 0;
    const worker = f.worker().handle(job, () => {
      calls++;
      return Promise.reject(undefined);
    });
    await worker.start();
    const dead = waitForEvent(worker, "job.dead-lettered");
    const { id } = await f.client.enqueue(job, null);
    const event = await dead;
    expect(event.reason).toBe("max-attempts");
    expect(event.error).toEqual({ name: "NonError", message: "undefined" });
    expect(calls).toBe(2);
    const [letter] = await deadLetters(f.broker, f.queue, 1);
    expect(letter?.reason).toBe("max-attempts");
    const envelope = decodeEnvelope(letter?.body ?? "", Number.POSITIVE_INFINITY);
    expect(envelope).toMatchObject({ id, attempt: 2, lastError: { name: "NonError", message: "undefined", attempt: 2 } });
  });

  it("retries a handler that throws synchronously", async () => {
    const f = fixture("sync-throw");
    const job = f.job<null>("sync", { maxAttempts: 2, backoff: noDelay });
    const worker = f.worker().handle(job, (_p, ctx) => {
      if (ctx.job.attempt === 1) throw new TypeError("sync");
    });
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded");
    await f.client.enqueue(job, null);
    expect((await succeeded).job.attempt).toBe(2);
  });

  it("carries the last error to the next attempt and waits for the backoff", async () => {
    const f = fixture("backoff");
    const job = f.job<null>("b", { maxAttempts: 2, backoff: { type: "fixed", delay: "150ms" } });
    const starts: number[] = [];
    const worker = f.worker().handle(job, () => {
      starts.push(Date.now());
      if (starts.length === 1) throw new Error("first try fails: redis://u:pw-leak@h");
    });
    const retrying = waitForEvent(worker, "job.retrying");
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded");
    await f.client.enqueue(job, null);
    const retry = await retrying;
    expect(retry.delayMs).toBe(150);
    expect(retry.error.message).toContain("first try fails");
    expect(retry.error.message).not.toContain("pw-leak");
    await succeeded;
    expect((starts[1] ?? 0) - (starts[0] ?? 0)).toBeGreaterThanOrEqual(150);
  });

  it("says whether a failure will be retried", async () => {
    const f = fixture("will-retry");
    const job = f.job<null>("w", { maxAttempts: 2, backoff: noDelay });
    const flags: boolean[] = [];
    const worker = f.worker().handle(job, () => {
      throw new Error("x");
    });
    worker.on("job.failed", (e) => flags.push(e.willRetry));
    await worker.start();
    const dead = waitForEvent(worker, "job.dead-lettered");
    await f.client.enqueue(job, null);
    await dead;
    expect(flags).toEqual([true, false]);
  });

  it("dead-letters a NonRetryableError at once", async () => {
    const f = fixture("non-retryable");
    const job = f.job<null>("nr", { maxAttempts: 10 });
    let calls = 0;
    const worker = f.worker().handle(job, () => {
      calls++;
      throw new NonRetryableError("card declined");
    });
    await worker.start();
    const dead = waitForEvent(worker, "job.dead-lettered");
    await f.client.enqueue(job, null);
    const event = await dead;
    expect(event.reason).toBe("non-retryable");
    expect(event.error).toMatchObject({ name: "NonRetryableError", code: "non-retryable", message: "card declined" });
    expect(event.job?.attempt).toBe(1);
    expect(calls).toBe(1);
    expect((await deadLetters(f.broker, f.queue, 1))[0]?.reason).toBe("non-retryable");
  });
});
