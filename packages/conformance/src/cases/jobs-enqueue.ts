/**
 * Job cases on enqueueing: bad options, schema failures, oversize and non-JSON payloads are refused
 * before anything is sent (nor recorded, with a store); a caller-chosen id is refused without dedupe
 * and deduplicated with it, or with a store on every broker (the record dedupes ids).
 */
import { randomUUID } from "node:crypto";
import {
  type BulkEnqueueError,
  type ClientOptions,
  defineJob,
  type EnqueueOptions,
  type JobsError,
  type PayloadTooLargeError,
  type Priority,
} from "@jobs/core";
import { describe, expect, it } from "vitest";
import { group, type JobFixture } from "../internal/fixture.js";
import { EMPTY, expectJobsError, quietWindow, rejectionOf } from "../internal/harness.js";
import { type Counted, countedSchema } from "../internal/jobs.js";
import type { ConformanceOptions } from "../options.js";

/** Enqueue validation: bad options, schema failures, oversize and non-JSON payloads are refused before anything is sent. */
export function jobSemanticsEnqueueValidation(options: ConformanceOptions): void {
  group(options, "jobs: enqueue validation", ({ caps, t, withStore, jobCase }) => {
    /**
     * A job case on one producer connection, with `nothingSent()` to assert that no job was
     * accepted: no `job.enqueued` event, an empty queue and, with a store, no record.
     */
    async function enqueueProbe(
      tag: string,
      client: Omit<ClientOptions, "broker"> = {},
    ): Promise<JobFixture & { nothingSent: () => Promise<void> }> {
      const f = await jobCase(tag, { brokers: 1, client });
      const enqueued: unknown[] = [];
      f.client.on("job.enqueued", (e) => enqueued.push(e));
      const nothingSent = async (): Promise<void> => {
        expect(enqueued).toEqual([]);
        await f.expectCounts(EMPTY);
        if (withStore) expect((await f.client.listJobs({ queue: f.q })).jobs).toEqual([]);
      };
      return { ...f, nothingSent };
    }

    it(
      "rejects invalid options with InvalidOptionsError and sends nothing",
      async () => {
        const { client, job: define, nothingSent } = await enqueueProbe("badopts");
        const job = define<Counted>("conformance.options");
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
        const { client, job: define, nothingSent } = await enqueueProbe("oversize", { maxPayloadBytes: limit });
        const job = define<{ blob: string }>("conformance.oversize");
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
        const { client, job: define, nothingSent } = await enqueueProbe("nonjson");
        const job = define<unknown>("conformance.nonjson");
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

    // With a store the record dedupes ids, so a caller-chosen id is accepted on every broker.
    const idempotent = caps.dedupeWindowMs > 0 || withStore;
    describe.skipIf(idempotent)("caller-chosen id without dedupe [needs capability: dedupeWindowMs = 0, and no store]", () => {
      it(
        "rejects the id option with UnsupportedError and sends nothing",
        async () => {
          const { client, job: define, nothingSent } = await enqueueProbe("noid");
          const job = define<Counted>("conformance.id");
          expectJobsError(await rejectionOf(client.enqueue(job, { n: 1 }, { id: "order-42" })), ["unsupported"]);
          await nothingSent();
        },
        t.testTimeout,
      );
    });

    describe.skipIf(!idempotent)("caller-chosen id with dedupe [needs capability: dedupeWindowMs > 0, or a store]", () => {
      it(
        "enqueues a job once per id: the second enqueue reports duplicate and the job runs once",
        async () => {
          const f = await jobCase("idempotent");
          const job = f.job<Counted>("conformance.idempotent");
          const runs: number[] = [];
          const worker = await f.run(job, (payload) => {
            runs.push(payload.n);
          });
          const id = `order-${randomUUID()}`;
          const done = worker.next("job.succeeded", t.wait);
          const first = await f.client.enqueue(job, { n: 1 }, { id });
          const second = await f.client.enqueue(job, { n: 2 }, { id });
          expect(first).toMatchObject({ id, duplicate: false });
          expect(second).toMatchObject({ id, duplicate: true });
          await done;
          await quietWindow(t.quiet);
          expect(runs).toEqual([1]);
          await f.expectCounts(EMPTY);
        },
        t.testTimeout,
      );
    });
  });
}
