/**
 * Job cases that need a job store (`ConformanceOptions.createStore`): what the record shows at each
 * step of a job on this broker (waiting, active, succeeded, retrying, dead, cancelled), the claim
 * that acks a finished job's message unrun, the admin's requeue of a dead record, cancel of a
 * waiting and of a running job, a message enqueued without a store, and the sweeper that publishes
 * a record its producer never published. Without a store the group is reported as skipped.
 */
import {
  createClient,
  type EnqueuedJob,
  type JobDefinition,
  type JobFailedError,
  type JobOptions,
  type JobRecord,
  type JobStatus,
} from "@jobs/core";
import { encodeEnvelope, type JobStore } from "@jobs/core/adapter";
import { expect, it } from "vitest";
import { ClaimWatch } from "../internal/claims.js";
import { type GroupEnv, group, type JobFixture, type RecordedWorker } from "../internal/fixture.js";
import { aborted, EMPTY, expectJobsError, physicalQueueOf, quietWindow, rejectionOf } from "../internal/harness.js";
import { type Counted, rawEnvelope } from "../internal/jobs.js";
import type { ConformanceOptions } from "../options.js";
import { newRecord } from "../store/internal/fixture.js";

/** What every records case starts with: its fixture, its store, its job, and a watch on the claims of a worker given `watch.view`. */
interface RecordsCase {
  readonly f: JobFixture;
  readonly store: JobStore;
  /** `conformance.<tag>` on the case's queue. */
  readonly job: JobDefinition<Counted>;
  readonly watch: ClaimWatch;
}

/** Opens a records case (the group runs only when the options give a store). */
async function recordsCase(
  jobCase: GroupEnv["jobCase"],
  tag: string,
  jobOptions?: Omit<JobOptions, "name" | "queue">,
): Promise<RecordsCase> {
  const f = await jobCase(tag);
  if (f.store === undefined) throw new Error("this case needs ConformanceOptions.createStore");
  return { f, store: f.store, job: f.job<Counted>(`conformance.${tag}`, jobOptions), watch: new ClaimWatch(f.store) };
}

/** A started worker whose handler only counts its runs, claiming through the case's watch. */
async function countingWorker({ f, job, watch }: RecordsCase): Promise<{ worker: RecordedWorker<undefined>; runs: () => number }> {
  let runs = 0;
  const worker = await f.run(
    job,
    () => {
      runs++;
    },
    { store: watch.view },
  );
  return { worker, runs: () => runs };
}

/** `result()` of the job rejects with JobFailedError: the job ended `status`. */
async function expectEnded(enqueued: EnqueuedJob, status: JobStatus, timeout: number): Promise<void> {
  const failure = await rejectionOf(enqueued.result({ timeout }));
  expectJobsError(failure, ["job-failed"]);
  expect((failure as JobFailedError).status).toBe(status);
}

/** The record of `id`, which must exist. */
async function recordOf(f: JobFixture, id: string): Promise<JobRecord> {
  const record = await f.client.getJob(id);
  expect(record, `expected a record of job ${id}`).not.toBeNull();
  return record as JobRecord;
}

/** Job records with a store: each status on this broker, claims by generation, requeue, cancel, the sweeper. */
export function jobSemanticsRecords(options: ConformanceOptions): void {
  group(options, "jobs: records [needs option: createStore]", ({ caps, t, withStore, jobCase }) => {
    const storeIt = it.skipIf(!withStore);

    storeIt(
      "keeps a record from enqueue to success: waiting, then active with its progress, then succeeded with the handler's result",
      async () => {
        const { f, job } = await recordsCase(jobCase, "rec-success");
        const enqueued = await f.client.enqueue(job, { n: 21 }, { tags: ["batch-7"], metadata: { tenant: "acme" } });
        expect(await recordOf(f, enqueued.id)).toMatchObject({
          id: enqueued.id,
          name: job.name,
          queue: f.q,
          status: "waiting",
          attempt: 1,
          payload: { n: 21 },
          tags: ["batch-7"],
          metadata: { tenant: "acme" },
          gen: 1,
          fence: 0,
        });
        let whileRunning: JobRecord | null = null;
        await f.run(job, async (payload, ctx) => {
          await ctx.progress({ done: 50 });
          whileRunning = await f.client.getJob(ctx.job.id);
          return { doubled: payload.n * 2 };
        });
        expect(await enqueued.result({ timeout: t.wait })).toEqual({ doubled: 42 });
        expect(whileRunning).toMatchObject({ status: "active", attempt: 1, fence: 1, claims: 1, progress: { done: 50 } });
        const done = await recordOf(f, enqueued.id);
        expect(done).toMatchObject({ status: "succeeded", attempt: 1, result: { doubled: 42 }, progress: { done: 50 }, gen: 1, fence: 1 });
        expect(done.finishedAt).toBeGreaterThanOrEqual(done.startedAt ?? Number.POSITIVE_INFINITY);
        const byTag = await f.client.listJobs({ queue: f.q, tag: "batch-7" });
        expect(byTag.jobs.map((j) => [j.id, j.status])).toEqual([[enqueued.id, "succeeded"]]);
        await f.expectCounts(EMPTY);
      },
      t.testTimeout,
    );

    storeIt(
      "acks a redelivered message of a finished job without running it again",
      async () => {
        const c = await recordsCase(jobCase, "rec-finished");
        const { f, job, watch } = c;
        const { worker, runs } = await countingWorker(c);
        const enqueued = await f.client.enqueue(job, { n: 1 });
        await enqueued.result({ timeout: t.wait });
        // The same message again, as a broker redelivers it (or the sweeper publishes a duplicate).
        const again = { ...rawEnvelope(f.q, job.name, { n: 1 }), id: enqueued.id, gen: 1 };
        const [outcome] = await f.producer.publish(physicalQueueOf(f.q, caps), [
          { id: enqueued.id, body: encodeEnvelope(again), priority: 2, delayMs: 0, dedupe: false },
        ]);
        expect(outcome?.ok).toBe(true);
        const [, second] = await watch.claimed(enqueued.id, 2, t.wait);
        expect(second?.outcome).toEqual({ outcome: "stale", status: "succeeded" });
        await f.expectCounts(EMPTY);
        expect(runs()).toBe(1);
        expect(worker.of("job.started")).toHaveLength(1);
        expect(await recordOf(f, enqueued.id)).toMatchObject({ status: "succeeded", fence: 1 });
      },
      t.testTimeout,
    );

    storeIt(
      "records a failed attempt as retrying, with its error and the next attempt due, then runs that attempt",
      async () => {
        const backoff = t.ms(50);
        const { f, job, watch } = await recordsCase(jobCase, "rec-retry", { maxAttempts: 3, backoff: { type: "fixed", delay: backoff } });
        let release: (() => void) | undefined;
        const worker = await f.run(
          job,
          (_p, ctx) => {
            if (ctx.job.attempt === 1) {
              // The next attempt's claim waits until the case has read the record between the attempts.
              release = watch.hold(ctx.job.id);
              throw new Error("attempt 1 fails");
            }
            return ctx.job.attempt;
          },
          { store: watch.view },
        );
        const retrying = worker.next("job.retrying", t.wait);
        const enqueued = await f.client.enqueue(job, { n: 1 });
        await retrying;
        const between = await recordOf(f, enqueued.id);
        expect(between).toMatchObject({ status: "retrying", attempt: 2, gen: 2, fence: 1, claims: 0 });
        expect(between.error?.message).toBe("attempt 1 fails");
        expect(between.runAt).toBeGreaterThanOrEqual(enqueued.runAt + backoff);
        release?.();
        expect(await enqueued.result({ timeout: t.wait })).toBe(2);
        expect(await recordOf(f, enqueued.id)).toMatchObject({ status: "succeeded", attempt: 2, gen: 2, fence: 2, result: 2 });
        expect(watch.of(enqueued.id).map((c) => [c.request.gen, c.outcome.outcome])).toEqual([
          [1, "claimed"],
          [2, "claimed"],
        ]);
        await f.expectCounts(EMPTY);
      },
      t.testTimeout,
    );

    storeIt(
      "keeps a job out of attempts as a dead record with its last error; the admin's requeue runs it again from attempt 1",
      async () => {
        const { f, job } = await recordsCase(jobCase, "rec-dead", { maxAttempts: 2, backoff: { type: "fixed", delay: t.ms(20) } });
        let healed = false;
        const attempts: number[] = [];
        const worker = await f.run(job, (_p, ctx) => {
          attempts.push(ctx.job.attempt);
          if (!healed) throw new Error(`boom ${ctx.job.attempt}`);
          return "healed";
        });
        const deadLettered = worker.next("job.dead-lettered", t.wait);
        const enqueued = await f.client.enqueue(job, { n: 1 });
        await deadLettered;
        const dead = await recordOf(f, enqueued.id);
        expect(dead).toMatchObject({ status: "dead", attempt: 2 });
        expect(dead.error?.message).toBe("boom 2");
        expect(dead.finishedAt).toBeGreaterThan(0);
        expect((await f.client.listJobs({ queue: f.q, status: "dead" })).jobs.map((j) => j.id)).toEqual([enqueued.id]);
        await expectEnded(enqueued, "dead", t.wait);
        await f.expectCounts({ ...EMPTY, dead: 1 });

        healed = true;
        expect(await f.admin.requeueDeadLetters(f.q)).toBe(1);
        expect(await f.client.result(enqueued.id, { timeout: t.wait })).toBe("healed");
        expect(await recordOf(f, enqueued.id)).toMatchObject({ status: "succeeded", attempt: 1, gen: 3, result: "healed" });
        expect(attempts).toEqual([1, 2, 1]);
        await f.expectCounts(EMPTY);
      },
      t.testTimeout,
    );

    storeIt(
      "records a job nobody handles as dead (unknown-job); once a worker handles it, the admin's requeue runs it",
      async () => {
        const { f, job: stranger } = await recordsCase(jobCase, "rec-unknown");
        const known = f.job<Counted>("conformance.known");
        const first = await f.run(known, () => {});
        const deadLettered = first.next("job.dead-lettered", t.wait);
        const enqueued = await f.client.enqueue(stranger, { n: 1 });
        expect((await deadLettered).reason).toBe("unknown-job");
        const dead = await recordOf(f, enqueued.id);
        expect(dead).toMatchObject({ status: "dead", attempt: 1 });
        expect(dead.error?.code).toBe("unknown-job");
        await first.close();

        await f.run(stranger, (p) => p.n + 1);
        expect(await f.admin.requeueDeadLetters(f.q)).toBe(1);
        expect(await f.client.result(enqueued.id, { timeout: t.wait })).toBe(2);
        await f.expectCounts(EMPTY);
      },
      t.testTimeout,
    );

    storeIt(
      "cancels a waiting job: it never starts, its message is acked unrun, and result() rejects with JobFailedError (cancelled)",
      async () => {
        const c = await recordsCase(jobCase, "rec-cancel-waiting");
        const { f, job, watch } = c;
        const enqueued = await f.client.enqueue(job, { n: 1 });
        expect(await f.client.cancel(enqueued.id)).toEqual({ outcome: "cancelled" });
        expect(await recordOf(f, enqueued.id)).toMatchObject({ status: "cancelled" });
        const { worker, runs } = await countingWorker(c);
        const [claim] = await watch.claimed(enqueued.id, 1, t.wait);
        expect(claim?.outcome).toEqual({ outcome: "stale", status: "cancelled" });
        await f.expectCounts(EMPTY);
        await expectEnded(enqueued, "cancelled", t.wait);
        expect(await f.client.cancel(enqueued.id)).toEqual({ outcome: "finished", status: "cancelled" });
        expect(runs()).toBe(0);
        expect(worker.events).toEqual([]);
      },
      t.testTimeout,
    );

    storeIt(
      "cancels a running job: its signal aborts at the worker's next heartbeat, and it ends cancelled, not retried",
      async () => {
        const { f, job } = await recordsCase(jobCase, "rec-cancel-running", { maxAttempts: 3 });
        let reason: unknown;
        const worker = await f.run(job, async (_p, { signal }) => {
          await aborted(signal);
          reason = signal.reason;
          throw signal.reason;
        });
        const started = worker.next("job.started", t.wait);
        const cancelled = worker.next("job.cancelled", t.lease + t.wait);
        const enqueued = await f.client.enqueue(job, { n: 1 });
        await started;
        expect(await f.client.cancel(enqueued.id)).toEqual({ outcome: "cancel-requested" });
        await cancelled;
        expectJobsError(reason, ["job-cancelled"]);
        expect(await recordOf(f, enqueued.id)).toMatchObject({ status: "cancelled", attempt: 1, cancelRequested: false });
        await expectEnded(enqueued, "cancelled", t.wait);
        await f.expectCounts(EMPTY);
        expect(worker.of("job.retrying")).toEqual([]);
        expect(worker.of("job.dead-lettered")).toEqual([]);
      },
      t.testTimeout,
    );

    storeIt(
      "gives a message enqueued without a store its record when a worker with the store claims it",
      async () => {
        const { f, job } = await recordsCase(jobCase, "rec-storeless");
        const worker = await f.run(job, (p) => p.n * 10);
        // Another producer (an older deployment, another service) that has no store. Until a worker
        // claims its message the job has no record, so result() would reject: wait for the run instead.
        const plain = createClient({ broker: f.producer });
        const succeeded = worker.next("job.succeeded", t.wait);
        const enqueued = await plain.enqueue(job, { n: 4 });
        expect((await succeeded).job.id).toBe(enqueued.id);
        expect(await f.client.result(enqueued.id, { timeout: t.wait })).toBe(40);
        expect(await recordOf(f, enqueued.id)).toMatchObject({ status: "succeeded", payload: { n: 4 }, attempt: 1, gen: 1 });
        await f.expectCounts(EMPTY);
      },
      t.testTimeout,
    );

    storeIt(
      "publishes a record its producer never published (the sweeper), and the job runs once",
      async () => {
        const { f, job, store } = await recordsCase(jobCase, "rec-sweeper");
        // What a producer that died between its record and its publish leaves behind.
        const record = newRecord({ name: job.name, queue: f.q, maxAttempts: 1, payloadJson: JSON.stringify({ n: 5 }) });
        expect(await store.insert([record])).toEqual(["inserted"]);
        let runs = 0;
        const sweepAfter = t.ms(200);
        await f.run(
          job,
          (p) => {
            runs++;
            return p.n;
          },
          { sweepAfter },
        );
        expect(await f.client.result(record.id, { timeout: sweepAfter + t.wait })).toBe(5);
        await f.expectCounts(EMPTY);
        await quietWindow(t.quiet);
        expect(runs).toBe(1);
      },
      t.testTimeout,
    );
  });
}
