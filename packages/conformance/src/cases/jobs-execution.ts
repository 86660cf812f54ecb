/**
 * Job cases on running jobs and stopping: success acks, the handler gets the injected context and
 * the job's info, events carry job info and never the payload; close waits for running jobs up to
 * its timeout, then aborts them, and an aborted job is not acked and keeps its attempt.
 */
import { randomUUID } from "node:crypto";
import { NonRetryableError } from "@jobs/core";
import { waitFor } from "@jobs/core/testing";
import { expect, it } from "vitest";
import { group, type WorkerEvent } from "../internal/fixture.js";
import { aborted, EMPTY, expectJobsError, quietWindow } from "../internal/harness.js";
import { type Counted, jobOf } from "../internal/jobs.js";
import type { ConformanceOptions } from "../options.js";

/**
 * How soon a job handed back by `close()` starts on another worker, in ms (before `timeScale`):
 * far below any lease, so a hand-back that waits for the lease to run out fails the case.
 * docs/concepts/shutdown.md states it.
 */
const HAND_BACK_BOUND_MS = 5_000;

/** Execution: success acks, injected context, events with job info and no payload. */
export function jobSemanticsExecution(options: ConformanceOptions): void {
  group(options, "jobs: execution", ({ t, jobCase }) => {
    it(
      "runs enqueued jobs with their payloads and acks them (counts go to 0)",
      async () => {
        const f = await jobCase("success");
        const job = f.job<Counted>("conformance.success");
        const seen: number[] = [];
        const worker = await f.run(
          job,
          (payload) => {
            seen.push(payload.n);
          },
          { concurrency: 2 },
        );
        const one = await f.client.enqueue(job, { n: 1 });
        const many = await f.client.enqueueMany([2, 3, 4].map((n) => ({ job, payload: { n } })));
        expect(one.duplicate).toBe(false);
        expect(many.map((m) => m.name)).toEqual([job.name, job.name, job.name]);
        expect(new Set([one.id, ...many.map((m) => m.id)]).size).toBe(4);
        await waitFor(() => worker.of("job.succeeded").length >= 4, { timeout: t.wait, message: "expected 4 jobs to succeed" });
        expect([...seen].sort()).toEqual([1, 2, 3, 4]);
        await f.expectCounts(EMPTY);
        await quietWindow(t.quiet);
        expect(seen).toHaveLength(4);
      },
      t.testTimeout,
    );

    it(
      "passes the worker's injected context and the job's info to the handler",
      async () => {
        const f = await jobCase("context");
        const job = f.job<Counted>("conformance.context", { maxAttempts: 4, priority: "high" });
        const context = { db: { query: (): string => "rows" }, marker: randomUUID() };
        let got: { context: unknown; job: unknown; aborted: boolean } | undefined;
        const worker = await f.run(
          job,
          (_payload, ctx) => {
            got = { context: ctx.context, job: ctx.job, aborted: ctx.signal.aborted };
          },
          { context },
        );
        const done = worker.next("job.succeeded", t.wait);
        const enqueued = await f.client.enqueue(job, { n: 7 }, { metadata: { tenant: "acme" } });
        await done;
        expect(got?.context).toBe(context);
        expect(got?.aborted).toBe(false);
        expect(got?.job).toMatchObject({
          id: enqueued.id,
          name: job.name,
          queue: f.q,
          attempt: 1,
          maxAttempts: 4,
          priority: "high",
          runAt: enqueued.runAt,
          metadata: { tenant: "acme" },
        });
      },
      t.testTimeout,
    );

    it(
      "emits started, failed, retrying, succeeded and dead-lettered with job info and never the payload",
      async () => {
        const f = await jobCase("events");
        const backoff = t.ms(100);
        const flaky = f.job<{ secret: string }>("conformance.flaky", { maxAttempts: 2, backoff: { type: "fixed", delay: backoff } });
        const doomed = f.job<{ secret: string }>("conformance.doomed", { maxAttempts: 5 });
        const secret = `secret-${randomUUID()}`;
        const worker = f.worker();
        worker.handle(flaky, (_p, { job }) => {
          if (job.attempt === 1) throw new Error("first attempt fails");
        });
        worker.handle(doomed, () => {
          throw new NonRetryableError("never works");
        });
        const events = worker.events;
        const enqueuedEvents: unknown[] = [];
        f.client.on("job.enqueued", (e) => enqueuedEvents.push(e));
        await worker.start();
        const flakyJob = await f.client.enqueue(flaky, { secret }, { metadata: { tenant: "acme" } });
        const doomedJob = await f.client.enqueue(doomed, { secret });
        await waitFor(
          () =>
            events.some((e) => e.type === "job.succeeded" && e.data.job.id === flakyJob.id) &&
            events.some((e) => e.type === "job.dead-lettered" && e.data.job?.id === doomedJob.id),
          { timeout: backoff + t.wait, message: "expected one success and one dead letter" },
        );
        const of = (id: string): WorkerEvent[] => events.filter((e) => jobOf(e)?.id === id);
        expect(of(flakyJob.id).map((e) => [e.type, jobOf(e)?.attempt])).toEqual([
          ["job.started", 1],
          ["job.failed", 1],
          ["job.retrying", 1],
          ["job.started", 2],
          ["job.succeeded", 2],
        ]);
        expect(of(doomedJob.id).map((e) => e.type)).toEqual(["job.started", "job.failed", "job.dead-lettered"]);
        for (const e of of(flakyJob.id)) {
          expect(jobOf(e)).toMatchObject({ name: flaky.name, queue: f.q, maxAttempts: 2, metadata: { tenant: "acme" } });
        }
        const failed = events.find((e) => e.type === "job.failed" && e.data.job.id === flakyJob.id);
        expect(failed?.type === "job.failed" && failed.data.willRetry).toBe(true);
        expect(failed?.type === "job.failed" && failed.data.error.message).toBe("first attempt fails");
        const retrying = events.find((e) => e.type === "job.retrying");
        expect(retrying?.type === "job.retrying" && retrying.data.delayMs).toBe(backoff);
        const succeeded = events.find((e) => e.type === "job.succeeded");
        expect(succeeded?.type === "job.succeeded" && succeeded.data.durationMs).toBeGreaterThanOrEqual(0);
        const dead = events.find((e) => e.type === "job.dead-lettered");
        expect(dead?.type === "job.dead-lettered" && dead.data.reason).toBe("non-retryable");
        const doomedFailed = events.find((e) => e.type === "job.failed" && e.data.job.id === doomedJob.id);
        expect(doomedFailed?.type === "job.failed" && doomedFailed.data.willRetry).toBe(false);
        expect(events.filter((e) => e.type === "error" || e.type === "job.lease-lost")).toEqual([]);
        expect(enqueuedEvents).toHaveLength(2);
        for (const e of [...events.map((x) => x.data), ...enqueuedEvents]) {
          const text = JSON.stringify(e);
          expect(text).not.toContain(secret);
          expect(text).not.toContain('"payload"');
        }
      },
      t.testTimeout,
    );
  });
}

/** Shutdown: close waits for running jobs up to its timeout, then aborts them; aborted jobs are not acked and keep their attempt. */
export function jobSemanticsShutdown(options: ConformanceOptions): void {
  group(options, "jobs: shutdown", ({ t, jobCase }) => {
    it(
      "close({ timeout }) aborts a job still running; it is not acked, and another worker runs it with the same attempt",
      async () => {
        const f = await jobCase("shutdown", { brokers: 3 });
        const [, first, second] = f.brokers;
        const job = f.job<Counted>("conformance.long", { maxAttempts: 3 });
        const attemptsA: number[] = [];
        let reasonA: unknown;
        const workerA = await f.run(
          job,
          async (_p, { job, signal }) => {
            attemptsA.push(job.attempt);
            await aborted(signal);
            reasonA = signal.reason;
            throw signal.reason;
          },
          { broker: first },
        );
        const started = workerA.next("job.started", t.wait);
        const enqueued = await f.client.enqueue(job, { n: 1 });
        await started;
        const grace = t.ms(150);
        const closingAt = performance.now();
        await workerA.close({ timeout: grace });
        expect(performance.now() - closingAt).toBeGreaterThanOrEqual(grace - 2);
        expect(attemptsA).toEqual([1]);
        expectJobsError(reasonA, ["broker-closed"]);
        expect(workerA.events.map((e) => e.type)).toEqual(["job.started"]);

        const attemptsB: { id: string; attempt: number }[] = [];
        const workerB = f.worker({ broker: second });
        workerB.handle(job, (_p, { job }) => {
          attemptsB.push({ id: job.id, attempt: job.attempt });
        });
        const done = workerB.next("job.succeeded", t.lease + t.wait);
        await workerB.start();
        await done;
        expect(attemptsB).toEqual([{ id: enqueued.id, attempt: 1 }]);
        await f.expectCounts(EMPTY);
      },
      t.testTimeout,
    );

    it(
      `close() hands back the jobs a worker holds (buffered beyond its concurrency, and aborted at the timeout): another worker starts them within ${HAND_BACK_BOUND_MS / 1000} s, far below their 60 s lease`,
      async () => {
        const bound = t.ms(HAND_BACK_BOUND_MS);
        const lease = 12 * bound;
        const f = await jobCase("handback", { brokers: 3 });
        const [, first, second] = f.brokers;
        const job = f.job<Counted>("conformance.handback");
        // Prefetch beyond concurrency: A buffers what it cannot run, and keeps fetching (a receive
        // in flight at close is what delayed SQS hand-backs by a whole lease).
        const workerA = f.worker({ broker: first, concurrency: 1, prefetch: 20, lease });
        workerA.handle(job, async (_p, { signal }) => {
          await aborted(signal);
          throw signal.reason;
        });
        await workerA.start();
        const running = workerA.next("job.started", t.wait);
        const ids = (await f.client.enqueueMany([1, 2, 3, 4].map((n) => ({ job, payload: { n } })))).map((h) => h.id);
        const runningId = (await running).job.id;

        const closingAt = performance.now();
        await workerA.close({ timeout: t.ms(150) });
        await first.close();
        // B starts only now: what A handed back can only have gone through A's own receives.
        const workerB = f.worker({ broker: second, concurrency: 4, lease });
        workerB.handle(job, () => {});
        await workerB.start();
        // Every job A held reaches B well before a lease runs out (no wall-clock assertion: the
        // wait itself is the bound, and a hand-back that waited for the lease would miss it).
        const left = bound - (performance.now() - closingAt);
        await waitFor(() => workerB.of("job.succeeded").length >= ids.length, {
          timeout: Math.max(1, left),
          message: `expected the ${ids.length} jobs handed back by close() to succeed on another worker within ${bound} ms of close() (lease ${lease} ms)`,
        });
        expect(
          workerA
            .of("job.started")
            .map((e) => e.job.id)
            .sort(),
        ).toEqual([runningId]);
        expect(
          workerB
            .of("job.started")
            .map((e) => ({ id: e.job.id, attempt: e.job.attempt }))
            .sort((a, b) => a.id.localeCompare(b.id)),
        ).toEqual([...ids].sort().map((id) => ({ id, attempt: 1 })));
        await f.expectCounts(EMPTY);
      },
      t.testTimeout,
    );

    it(
      "close() lets a running job finish within the timeout and acks it, without aborting its signal",
      async () => {
        const f = await jobCase("drain");
        const job = f.job<Counted>("conformance.finishing");
        const work = t.ms(150);
        let abortedDuringWork: boolean | undefined;
        const worker = await f.run(job, async (_p, { signal }) => {
          await quietWindow(work); // the job's own work
          abortedDuringWork = signal.aborted;
        });
        const started = worker.next("job.started", t.wait);
        await f.client.enqueue(job, { n: 1 });
        await started;
        await worker.close({ timeout: t.wait });
        expect(worker.of("job.succeeded")).toHaveLength(1);
        expect(abortedDuringWork).toBe(false);
        await f.expectCounts(EMPTY);
      },
      t.testTimeout,
    );
  });
}
