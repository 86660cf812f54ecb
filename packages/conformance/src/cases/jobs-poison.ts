/**
 * Job cases on poison messages: unknown job names, payloads failing the schema on receipt and
 * undecodable bytes are dead-lettered with their reason, and the worker keeps going.
 */
import { randomUUID } from "node:crypto";
import { type DeadLetterReason, defineJob } from "@jobs/core";
import { encodeEnvelope, MAX_ATTEMPTS } from "@jobs/core/adapter";
import { waitFor } from "@jobs/core/testing";
import { expect, it } from "vitest";
import { group, type RecordedWorker, type WorkerEvent } from "../internal/fixture.js";
import { EMPTY, physicalQueueOf } from "../internal/harness.js";
import { type Counted, countedSchema, rawEnvelope } from "../internal/jobs.js";
import type { ConformanceOptions } from "../options.js";

/** Poison messages: unknown job names, schema failures on receipt and undecodable bytes are dead-lettered; the worker keeps going. */
export function jobSemanticsPoisonMessages(options: ConformanceOptions): void {
  group(options, "jobs: poison messages", ({ caps, t, jobCase }) => {
    /** Enqueues a valid job and waits for it to succeed: proof the worker still runs. */
    async function stillRuns(worker: RecordedWorker<undefined>, enqueue: () => Promise<unknown>): Promise<void> {
      const ok = worker.next("job.succeeded", t.wait);
      await enqueue();
      await ok;
    }

    it(
      "dead-letters a job nobody handles with reason unknown-job, and keeps running",
      async () => {
        const f = await jobCase("unknown");
        const known = f.job<Counted>("conformance.known");
        const stranger = f.job<Counted>("conformance.unregistered");
        const worker = await f.run(known, () => {});
        const dead = worker.next("job.dead-lettered", t.wait);
        const enqueued = await f.client.enqueue(stranger, { n: 1 });
        const event = await dead;
        expect(event.reason).toBe("unknown-job");
        expect(event.job?.name).toBe(stranger.name);
        expect(event.error.code).toBe("unknown-job");
        const listed = await f.admin.listDeadLetters(f.q);
        expect(listed).toHaveLength(1);
        expect(listed[0]).toMatchObject({ id: enqueued.id, name: stranger.name, reason: "unknown-job" });
        await stillRuns(worker, () => f.client.enqueue(known, { n: 2 }));
        await f.expectCounts({ ...EMPTY, dead: 1 });
      },
      t.testTimeout,
    );

    it(
      "dead-letters a received payload that fails the job's schema with reason validation; the handler never runs",
      async () => {
        const f = await jobCase("schema");
        const { q } = f;
        const job = defineJob({ name: "conformance.schema", queue: q, schema: countedSchema });
        const handled: unknown[] = [];
        const worker = await f.run(job, (payload) => {
          handled.push(payload);
        });
        // A producer without the schema (another service, an older version) wrote this.
        const bad = rawEnvelope(q, job.name, { n: "seven" });
        const dead = worker.next("job.dead-lettered", t.wait);
        const [outcome] = await f.producer.publish(physicalQueueOf(q, caps), [
          { id: bad.id, body: encodeEnvelope(bad), priority: 2, delayMs: 0, dedupe: true },
        ]);
        expect(outcome?.ok).toBe(true);
        const event = await dead;
        expect(event.reason).toBe("validation");
        expect(event.job?.id).toBe(bad.id);
        expect(event.error.code).toBe("job-validation");
        expect(handled).toEqual([]);
        await stillRuns(worker, () => f.client.enqueue(job, { n: 7 }));
        expect(handled).toEqual([{ n: 7 }]);
        const listed = await f.admin.listDeadLetters(q);
        expect(listed.map((d) => [d.id, d.reason])).toEqual([[bad.id, "validation"]]);
      },
      t.testTimeout,
    );

    it(
      "dead-letters a forged envelope whose attempt or maxAttempts is out of enqueue's bounds as undecodable; the handler never runs",
      async () => {
        const f = await jobCase("attempts");
        const { q } = f;
        const job = f.job<Counted>("conformance.attempts");
        const handled: number[] = [];
        const worker = await f.run(job, ({ n }) => {
          handled.push(n);
        });
        const forged = (n: number, attempt: number, maxAttempts: number): string =>
          encodeEnvelope({ ...rawEnvelope(q, job.name, { n }), attempt, maxAttempts });
        // What a broker-write attacker might send: counts no enqueue writes. The fast path reads the
        // last two (plain digits), the general path the first two (JSON exponents).
        const bodies = [forged(1, 1e308, 3), forged(2, 1, 1e9), forged(3, 1, MAX_ATTEMPTS + 1), forged(4, 4, 3)];
        const physical = physicalQueueOf(q, caps);
        const outcomes = await f.producer.publish(
          physical,
          bodies.map((body) => ({ id: randomUUID(), body, priority: 2, delayMs: 0, dedupe: true })),
        );
        expect(outcomes.every((o) => o.ok)).toBe(true);
        const undecodable = (): WorkerEvent[] =>
          worker.events.filter((e) => e.type === "job.dead-lettered" && e.data.reason === "undecodable");
        await waitFor(() => undecodable().length >= bodies.length, { timeout: t.wait, message: "expected 4 undecodable dead letters" });
        for (const e of undecodable()) {
          expect(e.type === "job.dead-lettered" && e.data.error.code).toBe("envelope-decode");
          expect(e.type === "job.dead-lettered" && e.data.error.message).toMatch(/bad (attempt|maxAttempts)/);
        }
        // The largest counts enqueue writes still run.
        const [edge] = await f.producer.publish(physical, [
          { id: randomUUID(), body: forged(5, MAX_ATTEMPTS, MAX_ATTEMPTS), priority: 2, delayMs: 0, dedupe: true },
        ]);
        expect(edge?.ok).toBe(true);
        await waitFor(() => handled.includes(5), { timeout: t.wait, message: "the job at attempt 1000 of 1000 did not run" });
        expect(handled).toEqual([5]);
        expect(worker.events.filter((e) => e.type === "job.started")).toHaveLength(1);
        const kept = await f.producer.listDeadLetters(physical, { limit: 10 });
        expect([...kept.map((d) => d.body)].sort()).toEqual([...bodies].sort());
        await f.expectCounts({ ...EMPTY, dead: bodies.length });
      },
      t.testTimeout,
    );

    it(
      "dead-letters undecodable messages (not JSON, too deep, __proto__ keys, over the size limit) as undecodable, keeping their bytes (bounded)",
      async () => {
        const f = await jobCase("undecodable");
        const { q } = f;
        const job = f.job<Counted>("conformance.poison");
        const workerLimit = 4_096;
        const handled: unknown[] = [];
        const worker = await f.run(
          job,
          (payload) => {
            handled.push(payload);
          },
          { maxPayloadBytes: workerLimit },
        );
        const events = worker.events;
        const envelope = rawEnvelope(q, job.name, { n: 1 });
        const bodies = [
          "{not json",
          `${'{"a":'.repeat(100)}1${"}".repeat(100)}`,
          encodeEnvelope(envelope).replace('"payload":{"n":1}', '"payload":{"__proto__":{"polluted":true},"n":1}'),
          encodeEnvelope({ ...rawEnvelope(q, job.name, { n: 1, pad: "x".repeat(workerLimit) }) }),
        ];
        expect(bodies[2]).toContain('"__proto__"');
        const physical = physicalQueueOf(q, caps);
        const outcomes = await f.producer.publish(
          physical,
          bodies.map((body) => ({ id: randomUUID(), body, priority: 2, delayMs: 0, dedupe: true })),
        );
        expect(outcomes.every((o) => o.ok)).toBe(true);
        const undecodable = (): WorkerEvent[] => events.filter((e) => e.type === "job.dead-lettered" && e.data.reason === "undecodable");
        await waitFor(() => undecodable().length >= bodies.length, { timeout: t.wait, message: "expected 4 undecodable dead letters" });
        for (const e of undecodable()) {
          expect(e.type === "job.dead-lettered" && e.data.job).toBeUndefined();
          expect(e.type === "job.dead-lettered" && e.data.error.code).toBe("envelope-decode");
        }
        const kept = await f.producer.listDeadLetters(physical, { limit: 10 });
        expect(kept.map((d) => d.reason)).toEqual(bodies.map((): DeadLetterReason => "undecodable"));
        // An oversized body keeps only its first maxPayloadBytes (ASCII here, so as many characters).
        const keptBodies = bodies.map((b) => (b.length > workerLimit ? b.slice(0, workerLimit) : b));
        expect([...kept.map((d) => d.body)].sort()).toEqual(keptBodies.sort());
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
        await stillRuns(worker, () => f.client.enqueue(job, { n: 2 }));
        expect(handled).toEqual([{ n: 2 }]);
        expect(events.filter((e) => e.type === "error" || e.type === "job.failed" || e.type === "job.lease-lost")).toEqual([]);
        expect(events.filter((e) => e.type === "job.started")).toHaveLength(1);
        await f.expectCounts({ ...EMPTY, dead: bodies.length });
      },
      t.testTimeout,
    );
  });
}
