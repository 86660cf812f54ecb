/**
 * Job cases on failure: exact attempt numbers and backoff, dead-lettering after maxAttempts and
 * requeueing, timeouts that abort the handler's signal (and hold the slot of a handler that ignores
 * it), and non-retryable errors.
 */
import { NonRetryableError } from "@jobs/core";
import { expect, it } from "vitest";
import { group } from "../internal/fixture.js";
import { aborted, EMPTY, expectJobsError, quietWindow } from "../internal/harness.js";
import type { Counted } from "../internal/jobs.js";
import type { ConformanceOptions } from "../options.js";

/** Retries: exact attempt numbers and backoff, dead-letter after maxAttempts and requeue, timeouts, non-retryable errors. */
export function jobSemanticsRetries(options: ConformanceOptions): void {
  group(options, "jobs: retries", ({ t, jobCase }) => {
    it(
      "retries with attempts exactly 1, 2, 3, each starting no earlier than the backoff after the last failure",
      async () => {
        const f = await jobCase("backoff");
        const backoff = t.ms(250);
        const job = f.job<Counted>("conformance.backoff", { maxAttempts: 3, backoff: { type: "fixed", delay: backoff } });
        const attempts: number[] = [];
        const startedAt: number[] = [];
        const failedAt: number[] = [];
        const worker = await f.run(job, (_p, { job }) => {
          attempts.push(job.attempt);
          startedAt.push(Date.now());
          if (job.attempt < 3) {
            failedAt.push(Date.now());
            throw new Error(`attempt ${job.attempt} fails`);
          }
        });
        const done = worker.next("job.succeeded", 2 * backoff + t.wait);
        await f.client.enqueue(job, { n: 1 });
        const succeeded = await done;
        expect(succeeded.job.attempt).toBe(3);
        expect(attempts).toEqual([1, 2, 3]);
        expect(worker.of("job.retrying").map((e) => e.delayMs)).toEqual([backoff, backoff]);
        expect(startedAt[1]! - failedAt[0]!).toBeGreaterThanOrEqual(backoff);
        expect(startedAt[2]! - failedAt[1]!).toBeGreaterThanOrEqual(backoff);
        await f.expectCounts(EMPTY);
      },
      t.testTimeout,
    );

    it(
      "dead-letters once after maxAttempts with the last error; requeueDeadLetters runs it exactly once more as attempt 1",
      async () => {
        const f = await jobCase("maxatt");
        const { admin, q } = f;
        const job = f.job<Counted>("conformance.maxattempts", { maxAttempts: 2, backoff: { type: "fixed", delay: t.ms(20) } });
        let healed = false;
        const attempts: number[] = [];
        const worker = await f.run(job, (_p, { job }) => {
          attempts.push(job.attempt);
          if (!healed) throw new Error(`boom on attempt ${job.attempt}`);
        });
        const dead = worker.next("job.dead-lettered", t.wait);
        const enqueued = await f.client.enqueue(job, { n: 1 });
        const event = await dead;
        expect(event.reason).toBe("max-attempts");
        expect(event.job?.attempt).toBe(2);
        expect(event.error.message).toBe("boom on attempt 2");
        await f.expectCounts({ ...EMPTY, dead: 1 });
        const listed = await admin.listDeadLetters(q);
        expect(listed).toHaveLength(1);
        expect(listed[0]).toMatchObject({ id: enqueued.id, name: job.name, attempt: 2, reason: "max-attempts" });
        expect(listed[0]?.error.message).toBe("boom on attempt 2");
        expect(attempts).toEqual([1, 2]);

        healed = true;
        const succeeded = worker.next("job.succeeded", t.wait);
        expect(await admin.requeueDeadLetters(q)).toBe(1);
        const ok = await succeeded;
        expect(ok.job.id).toBe(enqueued.id);
        expect(ok.job.attempt).toBe(1);
        await f.expectCounts(EMPTY);
        expect(attempts).toEqual([1, 2, 1]);
        expect(worker.of("job.dead-lettered")).toHaveLength(1);
      },
      t.testTimeout,
    );

    it(
      "aborts the handler's signal with JobTimeoutError when the job times out, then retries it",
      async () => {
        const f = await jobCase("timeout");
        const timeout = t.ms(200);
        const job = f.job<Counted>("conformance.timeout", { maxAttempts: 2, timeout, backoff: { type: "fixed", delay: t.ms(20) } });
        let observed: { aborted: boolean; reason: unknown; afterMs: number } | undefined;
        const worker = await f.run(job, async (_p, { job, signal }) => {
          if (job.attempt > 1) return;
          const started = performance.now();
          await aborted(signal);
          observed = { aborted: signal.aborted, reason: signal.reason, afterMs: performance.now() - started };
          throw signal.reason;
        });
        const done = worker.next("job.succeeded", timeout + t.wait);
        await f.client.enqueue(job, { n: 1 });
        const ok = await done;
        expect(ok.job.attempt).toBe(2);
        expect(observed?.aborted).toBe(true);
        expectJobsError(observed?.reason, ["job-timeout"]);
        expect(observed?.afterMs).toBeGreaterThanOrEqual(timeout - 2);
        const failures = worker.of("job.failed");
        expect(failures).toHaveLength(1);
        expect(failures[0]?.error.code).toBe("job-timeout");
        expect(failures[0]?.willRetry).toBe(true);
      },
      t.testTimeout,
    );

    it(
      "keeps a timed-out handler that ignores its signal in its slot until it ends, and starts its retry only then",
      async () => {
        const f = await jobCase("overdue");
        const timeout = t.ms(150);
        const job = f.job<Counted>("conformance.overdue", { maxAttempts: 2, timeout, backoff: { type: "fixed", delay: t.ms(20) } });
        let open!: () => void;
        const hold = new Promise<void>((resolve) => {
          open = resolve;
        });
        const log: string[] = [];
        const worker = await f.run(
          job,
          async (_p, { job }) => {
            log.push(`start ${job.attempt}`);
            if (job.attempt === 1) await hold; // ignores its signal
            log.push(`end ${job.attempt}`);
          },
          { concurrency: 2, overdueAfter: t.ms(100) },
        );
        const overdue = worker.next("job.overdue", timeout + t.wait);
        const deferred = worker.next("job.deferred", timeout + t.wait);
        await f.client.enqueue(job, { n: 1 });
        expect((await overdue).job.attempt).toBe(1);
        // A slot is free, but attempt 2 is given back while attempt 1's handler still runs here.
        expect((await deferred).job.attempt).toBe(2);
        expect(log).toEqual(["start 1"]);
        expect(worker.of("job.failed").map((e) => [e.error.code, e.willRetry])).toEqual([["job-timeout", true]]);
        const done = worker.next("job.succeeded", t.wait);
        open();
        expect((await done).job.attempt).toBe(2);
        expect(log).toEqual(["start 1", "end 1", "start 2", "end 2"]);
        await f.expectCounts(EMPTY);
      },
      t.testTimeout,
    );

    it(
      "dead-letters a job whose handler throws NonRetryableError at once, with reason non-retryable",
      async () => {
        const f = await jobCase("nonretry");
        const job = f.job<Counted>("conformance.nonretryable", { maxAttempts: 5, backoff: { type: "fixed", delay: 1 } });
        let calls = 0;
        const worker = await f.run(job, () => {
          calls++;
          throw new NonRetryableError("card declined");
        });
        const dead = worker.next("job.dead-lettered", t.wait);
        await f.client.enqueue(job, { n: 1 });
        const event = await dead;
        expect(event.reason).toBe("non-retryable");
        expect(event.error.code).toBe("non-retryable");
        await f.expectCounts({ ...EMPTY, dead: 1 });
        const [view] = await f.admin.listDeadLetters(f.q);
        expect(view).toMatchObject({ reason: "non-retryable", attempt: 1, name: job.name });
        await quietWindow(t.quiet);
        expect(calls).toBe(1);
      },
      t.testTimeout,
    );
  });
}
