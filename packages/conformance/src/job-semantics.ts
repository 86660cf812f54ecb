/**
 * Job-semantics cases: core's client, worker and admin running on the adapter. They prove that
 * policy built once in core (retries, backoff, timeouts, validation, delays, priority emulation,
 * shutdown, events) holds on this broker.
 */
import { randomUUID } from "node:crypto";
import {
  type Broker,
  type BulkEnqueueError,
  type Client,
  type ClientOptions,
  createAdmin,
  createClient,
  createWorker,
  type DeadLetterReason,
  defineJob,
  type EnqueueOptions,
  type JobDefinition,
  type JobInfo,
  type JobsError,
  NonRetryableError,
  type PayloadTooLargeError,
  PRIORITIES,
  type Priority,
  WORKER_EVENTS,
  type Worker,
  type WorkerEventMap,
  type WorkerOptions,
} from "@jobs/core";
import { type Envelope, encodeEnvelope } from "@jobs/core/adapter";
import { waitFor, waitForEvent } from "@jobs/core/testing";
import { describe, expect, it } from "vitest";
import {
  aborted,
  EMPTY,
  expectCounts,
  expectJobsError,
  group,
  physicalQueueOf,
  quietWindow,
  rejectionOf,
  type Scope,
  type Timing,
  useScope,
} from "./internal/harness.js";
import type { ConformanceOptions } from "./options.js";

/** A payload with a count. */
interface Counted {
  readonly n: number;
}

/** A hand-written Standard Schema (no validation library needed): `{ n: number }`. */
const countedSchema: NonNullable<JobDefinition<Counted>["schema"]> = {
  "~standard": {
    version: 1,
    vendor: "jobs-conformance",
    validate(value: unknown) {
      if (typeof value === "object" && value !== null && typeof (value as { n?: unknown }).n === "number") {
        return { value: value as Counted };
      }
      return { issues: [{ message: "n must be a number", path: ["n"] }] };
    },
  },
};

/** A worker on its own broker instance, closed (before the brokers) at the end of the case. */
function scopedWorker<Ctx = undefined>(
  s: Scope,
  broker: Broker,
  t: Timing,
  options: Partial<Omit<WorkerOptions<Ctx>, "broker">> = {},
): Worker<Ctx> {
  const worker = createWorker<Ctx>({ broker, lease: t.lease, concurrency: 1, ...options });
  s.defer(() => worker.close({ timeout: 0 }));
  return worker;
}

type AnyEvent = { [E in keyof WorkerEventMap]: { readonly type: E; readonly data: WorkerEventMap[E] } }[keyof WorkerEventMap];

/** The next `event` of a worker (subscribe before triggering it). */
function nextEvent<Ctx, E extends keyof WorkerEventMap & string>(
  worker: Worker<Ctx>,
  event: E,
  timeout: number,
): Promise<WorkerEventMap[E]> {
  return waitForEvent<WorkerEventMap, E>(worker, event, () => true, { timeout });
}

/** The job an event is about, if any. */
function jobOf(event: AnyEvent): JobInfo | undefined {
  return "job" in event.data ? event.data.job : undefined;
}

/** Records every event of a worker, in order. */
function recordEvents<Ctx>(worker: Worker<Ctx>): AnyEvent[] {
  const events: AnyEvent[] = [];
  for (const type of WORKER_EVENTS) worker.on(type, (data) => events.push({ type, data } as AnyEvent));
  return events;
}

/** The raw envelope core would write for a job, for cases that publish bytes themselves. */
function rawEnvelope(queue: string, name: string, payload: unknown): Envelope {
  const now = Date.now();
  return {
    v: 1,
    id: randomUUID(),
    name,
    queue,
    payload,
    attempt: 1,
    maxAttempts: 3,
    priority: "normal",
    enqueuedAt: now,
    runAt: now,
    timeout: 30_000,
  };
}

/** Execution: success acks, injected context, events with job info and no payload. */
export function jobSemanticsExecution(options: ConformanceOptions): void {
  group(options, "jobs: execution", ({ t }) => {
    it(
      "runs enqueued jobs with their payloads and acks them (counts go to 0)",
      async () => {
        const s = useScope(options);
        const q = s.jobQueue("success");
        const [producer, consumer] = await s.brokers(2);
        const client = createClient({ broker: producer! });
        const admin = createAdmin({ broker: producer! });
        const job = defineJob<Counted>({ name: "conformance.success", queue: q });
        const seen: number[] = [];
        const worker = scopedWorker(s, consumer!, t, { concurrency: 2 });
        worker.handle(job, (payload) => {
          seen.push(payload.n);
        });
        await worker.start();
        let succeeded = 0;
        worker.on("job.succeeded", () => succeeded++);
        const one = await client.enqueue(job, { n: 1 });
        const many = await client.enqueueMany([2, 3, 4].map((n) => ({ job, payload: { n } })));
        expect(one.duplicate).toBe(false);
        expect(many.map((m) => m.name)).toEqual([job.name, job.name, job.name]);
        expect(new Set([one.id, ...many.map((m) => m.id)]).size).toBe(4);
        await waitFor(() => succeeded >= 4, { timeout: t.wait, message: "expected 4 jobs to succeed" });
        expect([...seen].sort()).toEqual([1, 2, 3, 4]);
        await expectCounts(admin, q, EMPTY, t.wait);
        await quietWindow(t.quiet);
        expect(seen).toHaveLength(4);
      },
      t.testTimeout,
    );

    it(
      "passes the worker's injected context and the job's info to the handler",
      async () => {
        const s = useScope(options);
        const q = s.jobQueue("context");
        const [producer, consumer] = await s.brokers(2);
        const client = createClient({ broker: producer! });
        const job = defineJob<Counted>({ name: "conformance.context", queue: q, maxAttempts: 4, priority: "high" });
        const context = { db: { query: (): string => "rows" }, marker: randomUUID() };
        let got: { context: unknown; job: unknown; aborted: boolean } | undefined;
        const worker = scopedWorker<typeof context>(s, consumer!, t, { context });
        worker.handle(job, (_payload, ctx) => {
          got = { context: ctx.context, job: ctx.job, aborted: ctx.signal.aborted };
        });
        await worker.start();
        const done = nextEvent(worker, "job.succeeded", t.wait);
        const enqueued = await client.enqueue(job, { n: 7 }, { metadata: { tenant: "acme" } });
        await done;
        expect(got?.context).toBe(context);
        expect(got?.aborted).toBe(false);
        expect(got?.job).toMatchObject({
          id: enqueued.id,
          name: job.name,
          queue: q,
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
        const s = useScope(options);
        const q = s.jobQueue("events");
        const [producer, consumer] = await s.brokers(2);
        const client = createClient({ broker: producer! });
        const backoff = t.ms(100);
        const flaky = defineJob<{ secret: string }>({
          name: "conformance.flaky",
          queue: q,
          maxAttempts: 2,
          backoff: { type: "fixed", delay: backoff },
        });
        const doomed = defineJob<{ secret: string }>({ name: "conformance.doomed", queue: q, maxAttempts: 5 });
        const secret = `secret-${randomUUID()}`;
        const worker = scopedWorker(s, consumer!, t);
        worker.handle(flaky, (_p, { job }) => {
          if (job.attempt === 1) throw new Error("first attempt fails");
        });
        worker.handle(doomed, () => {
          throw new NonRetryableError("never works");
        });
        const events = recordEvents(worker);
        const enqueuedEvents: unknown[] = [];
        client.on("job.enqueued", (e) => enqueuedEvents.push(e));
        await worker.start();
        const flakyJob = await client.enqueue(flaky, { secret }, { metadata: { tenant: "acme" } });
        const doomedJob = await client.enqueue(doomed, { secret });
        await waitFor(
          () =>
            events.some((e) => e.type === "job.succeeded" && e.data.job.id === flakyJob.id) &&
            events.some((e) => e.type === "job.dead-lettered" && e.data.job?.id === doomedJob.id),
          { timeout: backoff + t.wait, message: "expected one success and one dead letter" },
        );
        const of = (id: string): AnyEvent[] => events.filter((e) => jobOf(e)?.id === id);
        expect(of(flakyJob.id).map((e) => [e.type, jobOf(e)?.attempt])).toEqual([
          ["job.started", 1],
          ["job.failed", 1],
          ["job.retrying", 1],
          ["job.started", 2],
          ["job.succeeded", 2],
        ]);
        expect(of(doomedJob.id).map((e) => e.type)).toEqual(["job.started", "job.failed", "job.dead-lettered"]);
        for (const e of of(flakyJob.id)) {
          expect(jobOf(e)).toMatchObject({ name: flaky.name, queue: q, maxAttempts: 2, metadata: { tenant: "acme" } });
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

/** Retries: exact attempt numbers and backoff, dead-letter after maxAttempts and requeue, timeouts, non-retryable errors. */
export function jobSemanticsRetries(options: ConformanceOptions): void {
  group(options, "jobs: retries", ({ t }) => {
    it(
      "retries with attempts exactly 1, 2, 3, each starting no earlier than the backoff after the last failure",
      async () => {
        const s = useScope(options);
        const q = s.jobQueue("backoff");
        const [producer, consumer] = await s.brokers(2);
        const client = createClient({ broker: producer! });
        const backoff = t.ms(250);
        const job = defineJob<Counted>({
          name: "conformance.backoff",
          queue: q,
          maxAttempts: 3,
          backoff: { type: "fixed", delay: backoff },
        });
        const attempts: number[] = [];
        const startedAt: number[] = [];
        const failedAt: number[] = [];
        const worker = scopedWorker(s, consumer!, t);
        worker.handle(job, (_p, { job }) => {
          attempts.push(job.attempt);
          startedAt.push(Date.now());
          if (job.attempt < 3) {
            failedAt.push(Date.now());
            throw new Error(`attempt ${job.attempt} fails`);
          }
        });
        const retrying: number[] = [];
        worker.on("job.retrying", (e) => retrying.push(e.delayMs));
        await worker.start();
        const done = nextEvent(worker, "job.succeeded", 2 * backoff + t.wait);
        await client.enqueue(job, { n: 1 });
        const succeeded = await done;
        expect(succeeded.job.attempt).toBe(3);
        expect(attempts).toEqual([1, 2, 3]);
        expect(retrying).toEqual([backoff, backoff]);
        expect(startedAt[1]! - failedAt[0]!).toBeGreaterThanOrEqual(backoff);
        expect(startedAt[2]! - failedAt[1]!).toBeGreaterThanOrEqual(backoff);
        await expectCounts(createAdmin({ broker: producer! }), q, EMPTY, t.wait);
      },
      t.testTimeout,
    );

    it(
      "dead-letters once after maxAttempts with the last error; requeueDeadLetters runs it exactly once more as attempt 1",
      async () => {
        const s = useScope(options);
        const q = s.jobQueue("maxatt");
        const [producer, consumer] = await s.brokers(2);
        const client = createClient({ broker: producer! });
        const admin = createAdmin({ broker: producer! });
        const job = defineJob<Counted>({
          name: "conformance.maxattempts",
          queue: q,
          maxAttempts: 2,
          backoff: { type: "fixed", delay: t.ms(20) },
        });
        let healed = false;
        const attempts: number[] = [];
        const worker = scopedWorker(s, consumer!, t);
        worker.handle(job, (_p, { job }) => {
          attempts.push(job.attempt);
          if (!healed) throw new Error(`boom on attempt ${job.attempt}`);
        });
        const deadLettered: WorkerEventMap["job.dead-lettered"][] = [];
        worker.on("job.dead-lettered", (e) => deadLettered.push(e));
        await worker.start();
        const dead = nextEvent(worker, "job.dead-lettered", t.wait);
        const enqueued = await client.enqueue(job, { n: 1 });
        const event = await dead;
        expect(event.reason).toBe("max-attempts");
        expect(event.job?.attempt).toBe(2);
        expect(event.error.message).toBe("boom on attempt 2");
        await expectCounts(admin, q, { ...EMPTY, dead: 1 }, t.wait);
        const listed = await admin.listDeadLetters(q);
        expect(listed).toHaveLength(1);
        expect(listed[0]).toMatchObject({ id: enqueued.id, name: job.name, attempt: 2, reason: "max-attempts" });
        expect(listed[0]?.error.message).toBe("boom on attempt 2");
        expect(attempts).toEqual([1, 2]);

        healed = true;
        const succeeded = nextEvent(worker, "job.succeeded", t.wait);
        expect(await admin.requeueDeadLetters(q)).toBe(1);
        const ok = await succeeded;
        expect(ok.job.id).toBe(enqueued.id);
        expect(ok.job.attempt).toBe(1);
        await expectCounts(admin, q, EMPTY, t.wait);
        expect(attempts).toEqual([1, 2, 1]);
        expect(deadLettered).toHaveLength(1);
      },
      t.testTimeout,
    );

    it(
      "aborts the handler's signal with JobTimeoutError when the job times out, then retries it",
      async () => {
        const s = useScope(options);
        const q = s.jobQueue("timeout");
        const [producer, consumer] = await s.brokers(2);
        const client = createClient({ broker: producer! });
        const timeout = t.ms(200);
        const job = defineJob<Counted>({
          name: "conformance.timeout",
          queue: q,
          maxAttempts: 2,
          timeout,
          backoff: { type: "fixed", delay: t.ms(20) },
        });
        let observed: { aborted: boolean; reason: unknown; afterMs: number } | undefined;
        const worker = scopedWorker(s, consumer!, t);
        worker.handle(job, async (_p, { job, signal }) => {
          if (job.attempt > 1) return;
          const started = performance.now();
          await aborted(signal);
          observed = { aborted: signal.aborted, reason: signal.reason, afterMs: performance.now() - started };
          throw signal.reason;
        });
        const failures: WorkerEventMap["job.failed"][] = [];
        worker.on("job.failed", (e) => failures.push(e));
        await worker.start();
        const done = nextEvent(worker, "job.succeeded", timeout + t.wait);
        await client.enqueue(job, { n: 1 });
        const ok = await done;
        expect(ok.job.attempt).toBe(2);
        expect(observed?.aborted).toBe(true);
        expectJobsError(observed?.reason, ["job-timeout"]);
        expect(observed?.afterMs).toBeGreaterThanOrEqual(timeout - 2);
        expect(failures).toHaveLength(1);
        expect(failures[0]?.error.code).toBe("job-timeout");
        expect(failures[0]?.willRetry).toBe(true);
      },
      t.testTimeout,
    );

    it(
      "dead-letters a job whose handler throws NonRetryableError at once, with reason non-retryable",
      async () => {
        const s = useScope(options);
        const q = s.jobQueue("nonretry");
        const [producer, consumer] = await s.brokers(2);
        const client = createClient({ broker: producer! });
        const admin = createAdmin({ broker: producer! });
        const job = defineJob<Counted>({
          name: "conformance.nonretryable",
          queue: q,
          maxAttempts: 5,
          backoff: { type: "fixed", delay: 1 },
        });
        let calls = 0;
        const worker = scopedWorker(s, consumer!, t);
        worker.handle(job, () => {
          calls++;
          throw new NonRetryableError("card declined");
        });
        await worker.start();
        const dead = nextEvent(worker, "job.dead-lettered", t.wait);
        await client.enqueue(job, { n: 1 });
        const event = await dead;
        expect(event.reason).toBe("non-retryable");
        expect(event.error.code).toBe("non-retryable");
        await expectCounts(admin, q, { ...EMPTY, dead: 1 }, t.wait);
        const [view] = await admin.listDeadLetters(q);
        expect(view).toMatchObject({ reason: "non-retryable", attempt: 1, name: job.name });
        await quietWindow(t.quiet);
        expect(calls).toBe(1);
      },
      t.testTimeout,
    );
  });
}

/** Poison messages: unknown job names, schema failures on receipt and undecodable bytes are dead-lettered; the worker keeps going. */
export function jobSemanticsPoisonMessages(options: ConformanceOptions): void {
  group(options, "jobs: poison messages", ({ caps, t }) => {
    /** Enqueues a valid job and waits for it to succeed: proof the worker still runs. */
    async function stillRuns(worker: Worker<undefined>, enqueue: () => Promise<unknown>): Promise<void> {
      const ok = nextEvent(worker, "job.succeeded", t.wait);
      await enqueue();
      await ok;
    }

    it(
      "dead-letters a job nobody handles with reason unknown-job, and keeps running",
      async () => {
        const s = useScope(options);
        const q = s.jobQueue("unknown");
        const [producer, consumer] = await s.brokers(2);
        const client = createClient({ broker: producer! });
        const admin = createAdmin({ broker: producer! });
        const known = defineJob<Counted>({ name: "conformance.known", queue: q });
        const stranger = defineJob<Counted>({ name: "conformance.unregistered", queue: q });
        const worker = scopedWorker(s, consumer!, t);
        worker.handle(known, () => {});
        await worker.start();
        const dead = nextEvent(worker, "job.dead-lettered", t.wait);
        const enqueued = await client.enqueue(stranger, { n: 1 });
        const event = await dead;
        expect(event.reason).toBe("unknown-job");
        expect(event.job?.name).toBe(stranger.name);
        expect(event.error.code).toBe("unknown-job");
        const listed = await admin.listDeadLetters(q);
        expect(listed).toHaveLength(1);
        expect(listed[0]).toMatchObject({ id: enqueued.id, name: stranger.name, reason: "unknown-job" });
        await stillRuns(worker, () => client.enqueue(known, { n: 2 }));
        await expectCounts(admin, q, { ...EMPTY, dead: 1 }, t.wait);
      },
      t.testTimeout,
    );

    it(
      "dead-letters a received payload that fails the job's schema with reason validation; the handler never runs",
      async () => {
        const s = useScope(options);
        const q = s.jobQueue("schema");
        const [producer, consumer] = await s.brokers(2);
        const client = createClient({ broker: producer! });
        const admin = createAdmin({ broker: producer! });
        const job = defineJob({ name: "conformance.schema", queue: q, schema: countedSchema });
        const handled: unknown[] = [];
        const worker = scopedWorker(s, consumer!, t);
        worker.handle(job, (payload) => {
          handled.push(payload);
        });
        await worker.start();
        // A producer without the schema (another service, an older version) wrote this.
        const bad = rawEnvelope(q, job.name, { n: "seven" });
        const dead = nextEvent(worker, "job.dead-lettered", t.wait);
        const [outcome] = await producer!.publish(physicalQueueOf(q, caps), [
          { id: bad.id, body: encodeEnvelope(bad), priority: 2, delayMs: 0, dedupe: true },
        ]);
        expect(outcome?.ok).toBe(true);
        const event = await dead;
        expect(event.reason).toBe("validation");
        expect(event.job?.id).toBe(bad.id);
        expect(event.error.code).toBe("job-validation");
        expect(handled).toEqual([]);
        await stillRuns(worker, () => client.enqueue(job, { n: 7 }));
        expect(handled).toEqual([{ n: 7 }]);
        const listed = await admin.listDeadLetters(q);
        expect(listed.map((d) => [d.id, d.reason])).toEqual([[bad.id, "validation"]]);
      },
      t.testTimeout,
    );

    it(
      "dead-letters undecodable messages (not JSON, too deep, __proto__ keys, over the size limit) as undecodable, keeping their bytes (bounded)",
      async () => {
        const s = useScope(options);
        const q = s.jobQueue("undecodable");
        const [producer, consumer] = await s.brokers(2);
        const client = createClient({ broker: producer! });
        const admin = createAdmin({ broker: producer! });
        const job = defineJob<Counted>({ name: "conformance.poison", queue: q });
        const workerLimit = 4_096;
        const handled: unknown[] = [];
        const worker = scopedWorker(s, consumer!, t, { maxPayloadBytes: workerLimit });
        worker.handle(job, (payload) => {
          handled.push(payload);
        });
        const events = recordEvents(worker);
        await worker.start();
        const envelope = rawEnvelope(q, job.name, { n: 1 });
        const bodies = [
          "{not json",
          `${'{"a":'.repeat(100)}1${"}".repeat(100)}`,
          encodeEnvelope(envelope).replace('"payload":{"n":1}', '"payload":{"__proto__":{"polluted":true},"n":1}'),
          encodeEnvelope({ ...rawEnvelope(q, job.name, { n: 1, pad: "x".repeat(workerLimit) }) }),
        ];
        expect(bodies[2]).toContain('"__proto__"');
        const physical = physicalQueueOf(q, caps);
        const outcomes = await producer!.publish(
          physical,
          bodies.map((body) => ({ id: randomUUID(), body, priority: 2, delayMs: 0, dedupe: true })),
        );
        expect(outcomes.every((o) => o.ok)).toBe(true);
        const undecodable = (): AnyEvent[] => events.filter((e) => e.type === "job.dead-lettered" && e.data.reason === "undecodable");
        await waitFor(() => undecodable().length >= bodies.length, { timeout: t.wait, message: "expected 4 undecodable dead letters" });
        for (const e of undecodable()) {
          expect(e.type === "job.dead-lettered" && e.data.job).toBeUndefined();
          expect(e.type === "job.dead-lettered" && e.data.error.code).toBe("envelope-decode");
        }
        const kept = await producer!.listDeadLetters(physical, { limit: 10 });
        expect(kept.map((d) => d.reason)).toEqual(bodies.map((): DeadLetterReason => "undecodable"));
        // An oversized body keeps only its first maxPayloadBytes (ASCII here, so as many characters).
        const keptBodies = bodies.map((b) => (b.length > workerLimit ? b.slice(0, workerLimit) : b));
        expect([...kept.map((d) => d.body)].sort()).toEqual(keptBodies.sort());
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
        await stillRuns(worker, () => client.enqueue(job, { n: 2 }));
        expect(handled).toEqual([{ n: 2 }]);
        expect(events.filter((e) => e.type === "error" || e.type === "job.failed" || e.type === "job.lease-lost")).toEqual([]);
        expect(events.filter((e) => e.type === "job.started")).toHaveLength(1);
        await expectCounts(admin, q, { ...EMPTY, dead: bodies.length }, t.wait);
      },
      t.testTimeout,
    );
  });
}

/** Scheduling: delayed jobs never start early (even beyond the broker's native delay), priority under a backlog. */
export function jobSemanticsScheduling(options: ConformanceOptions): void {
  group(options, "jobs: delays and priority", ({ caps, t }) => {
    it(
      "never starts a delayed job before its runAt, and starts it soon after",
      async () => {
        const s = useScope(options);
        const q = s.jobQueue("delayed");
        const [producer, consumer] = await s.brokers(2);
        const client = createClient({ broker: producer! });
        const job = defineJob<Counted>({ name: "conformance.delayed", queue: q });
        const starts: { at: number; attempt: number }[] = [];
        const worker = scopedWorker(s, consumer!, t);
        worker.handle(job, (_p, { job }) => {
          starts.push({ at: Date.now(), attempt: job.attempt });
        });
        await worker.start();
        const delay = t.ms(400);
        const done = nextEvent(worker, "job.succeeded", delay + t.wait);
        const enqueued = await client.enqueue(job, { n: 1 }, { delay });
        await done;
        expect(starts).toHaveLength(1);
        expect(starts[0]!.attempt).toBe(1);
        expect(starts[0]!.at).toBeGreaterThanOrEqual(enqueued.runAt);
        expect(starts[0]!.at - enqueued.runAt).toBeLessThan(t.ms(1_000) + 2 * t.resolution);
      },
      t.testTimeout,
    );

    const beyond = Number.isFinite(caps.maxDelayMs) && caps.maxDelayMs <= t.ms(2_000);
    describe.skipIf(!beyond)("delay beyond the native limit [needs capability: maxDelayMs ≤ 2 s]", () => {
      it(
        "runs a job delayed past maxDelayMs once, at or after runAt, as attempt 1 (re-delays are not attempts)",
        async () => {
          const s = useScope(options);
          const q = s.jobQueue("longdelay");
          const [producer, consumer] = await s.brokers(2);
          const client = createClient({ broker: producer! });
          const job = defineJob<Counted>({ name: "conformance.longdelay", queue: q });
          const starts: { at: number; attempt: number }[] = [];
          const worker = scopedWorker(s, consumer!, t);
          worker.handle(job, (_p, { job }) => {
            starts.push({ at: Date.now(), attempt: job.attempt });
          });
          const events = recordEvents(worker);
          await worker.start();
          const delay = Math.ceil(2.5 * caps.maxDelayMs);
          const done = nextEvent(worker, "job.succeeded", delay + t.wait);
          const enqueued = await client.enqueue(job, { n: 1 }, { delay });
          await done;
          expect(starts).toHaveLength(1);
          expect(starts[0]!.attempt).toBe(1);
          expect(starts[0]!.at).toBeGreaterThanOrEqual(enqueued.runAt);
          expect(events.filter((e) => e.type === "job.deferred").length).toBeGreaterThanOrEqual(1);
          expect(events.filter((e) => e.type === "job.failed" || e.type === "job.retrying" || e.type === "error")).toEqual([]);
          await expectCounts(createAdmin({ broker: producer! }), q, EMPTY, t.wait);
        },
        t.testTimeout,
      );
    });

    it(
      "starts the highest priority first from a backlog (native or emulated by core)",
      async () => {
        const s = useScope(options);
        const q = s.jobQueue("priority");
        const [producer, consumer] = await s.brokers(2);
        const client = createClient({ broker: producer! });
        const admin = createAdmin({ broker: producer! });
        const job = defineJob<{ label: string }>({ name: "conformance.priority", queue: q });
        // The backlog builds up before any worker runs.
        // One job per level: with emulated priority a worker only knows what each level's queue already handed it.
        const order: Priority[] = ["low", "trivial", "normal", "high", "critical"];
        for (const [i, priority] of order.entries()) await client.enqueue(job, { label: `${priority}-${i}` }, { priority });
        await expectCounts(admin, q, { ...EMPTY, waiting: order.length }, t.wait);
        const started: string[] = [];
        const worker = scopedWorker(s, consumer!, t, { concurrency: 1 });
        worker.handle(job, (payload) => {
          started.push(payload.label.split("-")[0] as string);
        });
        let succeeded = 0;
        worker.on("job.succeeded", () => succeeded++);
        await worker.start();
        await waitFor(() => succeeded >= order.length, { timeout: t.wait, message: "backlog not drained" });
        const rank = (p: string): number => PRIORITIES.indexOf(p as Priority);
        expect(started[0]).toBe("critical");
        expect(started).toEqual([...order].sort((a, b) => rank(b) - rank(a)));
      },
      t.testTimeout,
    );
  });
}

/** Shutdown: close waits for running jobs up to its timeout, then aborts them; aborted jobs are not acked and keep their attempt. */
export function jobSemanticsShutdown(options: ConformanceOptions): void {
  group(options, "jobs: shutdown", ({ t }) => {
    it(
      "close({ timeout }) aborts a job still running; it is not acked, and another worker runs it with the same attempt",
      async () => {
        const s = useScope(options);
        const q = s.jobQueue("shutdown");
        const [producer, first, second] = await s.brokers(3);
        const client = createClient({ broker: producer! });
        const job = defineJob<Counted>({ name: "conformance.long", queue: q, maxAttempts: 3 });
        const attemptsA: number[] = [];
        let reasonA: unknown;
        const workerA = scopedWorker(s, first!, t);
        workerA.handle(job, async (_p, { job, signal }) => {
          attemptsA.push(job.attempt);
          await aborted(signal);
          reasonA = signal.reason;
          throw signal.reason;
        });
        const eventsA = recordEvents(workerA);
        await workerA.start();
        const started = nextEvent(workerA, "job.started", t.wait);
        const enqueued = await client.enqueue(job, { n: 1 });
        await started;
        const grace = t.ms(150);
        const closingAt = performance.now();
        await workerA.close({ timeout: grace });
        expect(performance.now() - closingAt).toBeGreaterThanOrEqual(grace - 2);
        expect(attemptsA).toEqual([1]);
        expectJobsError(reasonA, ["broker-closed"]);
        expect(eventsA.map((e) => e.type)).toEqual(["job.started"]);

        const attemptsB: { id: string; attempt: number }[] = [];
        const workerB = scopedWorker(s, second!, t);
        workerB.handle(job, (_p, { job }) => {
          attemptsB.push({ id: job.id, attempt: job.attempt });
        });
        const done = nextEvent(workerB, "job.succeeded", t.lease + t.wait);
        await workerB.start();
        await done;
        expect(attemptsB).toEqual([{ id: enqueued.id, attempt: 1 }]);
        await expectCounts(createAdmin({ broker: producer! }), q, EMPTY, t.wait);
      },
      t.testTimeout,
    );

    it(
      "close() lets a running job finish within the timeout and acks it, without aborting its signal",
      async () => {
        const s = useScope(options);
        const q = s.jobQueue("drain");
        const [producer, consumer] = await s.brokers(2);
        const client = createClient({ broker: producer! });
        const job = defineJob<Counted>({ name: "conformance.finishing", queue: q });
        const work = t.ms(150);
        let abortedDuringWork: boolean | undefined;
        const worker = scopedWorker(s, consumer!, t);
        worker.handle(job, async (_p, { signal }) => {
          await quietWindow(work); // the job's own work
          abortedDuringWork = signal.aborted;
        });
        let succeeded = 0;
        worker.on("job.succeeded", () => succeeded++);
        await worker.start();
        const started = nextEvent(worker, "job.started", t.wait);
        await client.enqueue(job, { n: 1 });
        await started;
        await worker.close({ timeout: t.wait });
        expect(succeeded).toBe(1);
        expect(abortedDuringWork).toBe(false);
        await expectCounts(createAdmin({ broker: producer! }), q, EMPTY, t.wait);
      },
      t.testTimeout,
    );
  });
}

/** Enqueue validation: bad options, schema failures, oversize and non-JSON payloads are refused before anything is sent. */
export function jobSemanticsEnqueueValidation(options: ConformanceOptions): void {
  group(options, "jobs: enqueue validation", ({ caps, t }) => {
    /** Asserts that nothing reached the queue and no enqueue was reported. */
    /**
     * A fresh queue and a client on a producer connection, with `nothingSent()` to assert that no
     * job was accepted: no `job.enqueued` event and an empty queue.
     */
    async function enqueueProbe(
      tag: string,
      clientOptions: Omit<ClientOptions, "broker"> = {},
    ): Promise<{ q: string; client: Client; nothingSent: () => Promise<void> }> {
      const s = useScope(options);
      const q = s.jobQueue(tag);
      const producer = await s.broker();
      const client = createClient({ broker: producer, ...clientOptions });
      const enqueued: unknown[] = [];
      client.on("job.enqueued", (e) => enqueued.push(e));
      const nothingSent = async (): Promise<void> => {
        expect(enqueued).toEqual([]);
        await expectCounts(createAdmin({ broker: producer }), q, EMPTY, t.wait);
      };
      return { q, client, nothingSent };
    }

    it(
      "rejects invalid options with InvalidOptionsError and sends nothing",
      async () => {
        const { q, client, nothingSent } = await enqueueProbe("badopts");
        const job = defineJob<Counted>({ name: "conformance.options", queue: q });
        const bad: EnqueueOptions[] = [
          { maxAttempts: 0 },
          { maxAttempts: 1.5 },
          { priority: "urgent" as Priority },
          { delay: 10, runAt: Date.now() + 10 },
          { delay: "soon" },
          { delay: -5 },
          { runAt: Number.NaN },
          { timeout: 0 },
          { metadata: { nested: {} } as unknown as Record<string, string> },
          { id: "not a valid id!" },
        ];
        for (const opts of bad) {
          const error = await rejectionOf(client.enqueue(job, { n: 1 }, opts));
          expectJobsError(error, ["invalid-options"]);
        }
        await nothingSent();
      },
      t.testTimeout,
    );

    it(
      "rejects a payload that fails the schema with JobValidationError and sends nothing",
      async () => {
        const { q, client, nothingSent } = await enqueueProbe("badschema");
        const job = defineJob({ name: "conformance.schema-enqueue", queue: q, schema: countedSchema });
        const error = expectJobsError(await rejectionOf(client.enqueue(job, { n: "one" } as unknown as Counted)), ["job-validation"]);
        expect((error as JobsError & { issues: unknown[] }).issues).toEqual([{ message: "n must be a number", path: ["n"] }]);
        await nothingSent();
      },
      t.testTimeout,
    );

    it(
      "rejects a job over the payload limit with PayloadTooLargeError and sends nothing",
      async () => {
        const limit = Math.min(caps.maxPayloadBytes, 16_384);
        const { q, client, nothingSent } = await enqueueProbe("oversize", { maxPayloadBytes: limit });
        const job = defineJob<{ blob: string }>({ name: "conformance.oversize", queue: q });
        const error = await rejectionOf(client.enqueue(job, { blob: "é".repeat(Math.ceil(limit / 2)) }));
        expectJobsError(error, ["payload-too-large"]);
        expect((error as PayloadTooLargeError).limit).toBe(limit);
        await nothingSent();
      },
      t.testTimeout,
    );

    it(
      "rejects payloads that are not plain JSON (Date, function, BigInt, cycle, NaN) with JobValidationError and sends nothing",
      async () => {
        const { q, client, nothingSent } = await enqueueProbe("nonjson");
        const job = defineJob<unknown>({ name: "conformance.nonjson", queue: q });
        const cycle: Record<string, unknown> = { n: 1 };
        cycle.self = cycle;
        const payloads: unknown[] = [{ when: new Date() }, { fn: () => 1 }, { big: 10n }, cycle, { n: Number.NaN }, new Map([["a", 1]])];
        for (const payload of payloads) expectJobsError(await rejectionOf(client.enqueue(job, payload)), ["job-validation"]);
        await nothingSent();
      },
      t.testTimeout,
    );

    it(
      "enqueueMany with one invalid item rejects with BulkEnqueueError (per-item outcomes) and sends nothing",
      async () => {
        const { q, client, nothingSent } = await enqueueProbe("bulk");
        const job = defineJob({ name: "conformance.bulk", queue: q, schema: countedSchema });
        const error = await rejectionOf(
          client.enqueueMany([
            { job, payload: { n: 1 } },
            { job, payload: { n: "two" } as unknown as Counted },
            { job, payload: { n: 3 } },
          ]),
        );
        expectJobsError(error, ["bulk-enqueue"]);
        const outcomes = (error as BulkEnqueueError).outcomes;
        expect(outcomes.map((o) => o.status)).toEqual(["not-sent", "rejected", "not-sent"]);
        expect(outcomes[1]?.status === "rejected" && outcomes[1].error.code).toBe("job-validation");
        await nothingSent();
      },
      t.testTimeout,
    );

    describe.skipIf(caps.dedupeWindowMs > 0)("caller-chosen id without dedupe [needs capability: dedupeWindowMs = 0]", () => {
      it(
        "rejects the id option with UnsupportedError and sends nothing",
        async () => {
          const { q, client, nothingSent } = await enqueueProbe("noid");
          const job = defineJob<Counted>({ name: "conformance.id", queue: q });
          expectJobsError(await rejectionOf(client.enqueue(job, { n: 1 }, { id: "order-42" })), ["unsupported"]);
          await nothingSent();
        },
        t.testTimeout,
      );
    });

    describe.skipIf(!(caps.dedupeWindowMs > 0))("caller-chosen id with dedupe [needs capability: dedupeWindowMs > 0]", () => {
      it(
        "enqueues a job once per id: the second enqueue reports duplicate and the job runs once",
        async () => {
          const s = useScope(options);
          const q = s.jobQueue("idempotent");
          const [producer, consumer] = await s.brokers(2);
          const client = createClient({ broker: producer! });
          const job = defineJob<Counted>({ name: "conformance.idempotent", queue: q });
          const runs: number[] = [];
          const worker = scopedWorker(s, consumer!, t);
          worker.handle(job, (payload) => {
            runs.push(payload.n);
          });
          await worker.start();
          const id = `order-${randomUUID()}`;
          const done = nextEvent(worker, "job.succeeded", t.wait);
          const first = await client.enqueue(job, { n: 1 }, { id });
          const second = await client.enqueue(job, { n: 2 }, { id });
          expect(first).toMatchObject({ id, duplicate: false });
          expect(second).toMatchObject({ id, duplicate: true });
          await done;
          await quietWindow(t.quiet);
          expect(runs).toEqual([1]);
          await expectCounts(createAdmin({ broker: producer! }), q, EMPTY, t.wait);
        },
        t.testTimeout,
      );
    });
  });
}
