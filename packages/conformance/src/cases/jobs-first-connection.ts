/**
 * Job cases before the broker was ever reached (docs/concepts/workers.md, "Before the broker is
 * reached"): an enqueue rejected then is definite, so it is never delivered once the broker comes
 * up. They run only when the adapter's test gives a private server the suite may take down and
 * bring back (`firstConnection`); the memory broker has no connection to miss.
 */
import { type Broker, createAdmin, createClient, createWorker, defineJob, type JobsError } from "@jobs/core";
import { waitFor } from "@jobs/core/testing";
import { describe, expect, it, onTestFinished } from "vitest";
import { group } from "../internal/fixture.js";
import { EMPTY, expectCounts, expectJobsError, uniqueQueueName } from "../internal/harness.js";
import type { ConformanceOptions, FirstConnectionServer } from "../options.js";

/** What a job of this case carries: which enqueue it came from. */
interface Tagged {
  readonly tag: string;
}

/** Before the broker is reached: a rejected enqueue stays rejected. */
export function jobSemanticsFirstConnection(options: ConformanceOptions): void {
  group(options, "jobs: before the broker is reached", ({ t }) => {
    describe.skipIf(options.firstConnection === undefined)("first connection [needs option: firstConnection]", () => {
      it(
        "an enqueue rejected before the broker was ever reached is never delivered once it comes up; the next one runs",
        async () => {
          const server = options.firstConnection as FirstConnectionServer;
          const brokers: Broker[] = [];
          let down = false;
          onTestFinished(async () => {
            for (const b of brokers) await b.close().catch(() => {});
            // Later cases of the file may use the same server.
            if (down) await server.start();
          });
          const open = async (): Promise<Broker> => {
            const broker = await server.createBroker();
            brokers.push(broker);
            return broker;
          };
          const q = uniqueQueueName("firstconn");
          const job = defineJob<Tagged>({ name: "conformance.first-connection", queue: q });

          await server.stop();
          down = true;
          // A broker created while nothing listens: its first connection fails.
          const producer = await open();
          const client = createClient({ broker: producer });
          const rejected: string[] = [];
          const first = await client.enqueue(job, { tag: "rejected-0" }).then(
            () => undefined,
            (error: unknown) => error,
          );
          expect(first, "an enqueue with the broker down resolved").toBeDefined();
          expect(expectJobsError(first, ["broker-connection"]).retryable).toBe(true);
          rejected.push("rejected-0");

          await server.start();
          down = false;
          // The same client, once the broker is up. Until the broker's own reconnect lands, an
          // enqueue may still be refused, definitely: each such job must never run either.
          const deadline = performance.now() + t.ms(30_000);
          let accepted: string | undefined;
          for (let i = 1; accepted === undefined; i++) {
            const tag = `rejected-${i}`;
            try {
              accepted = (await client.enqueue(job, { tag: "accepted" })).id;
            } catch (error) {
              // Never "outcome unknown": the table promises a definite answer.
              expectJobsError(error, ["broker-connection"]);
              expect((error as JobsError).retryable).toBe(true);
              expect(performance.now(), `no enqueue accepted ${t.ms(30_000)} ms after the broker came up`).toBeLessThan(deadline);
              rejected.push(tag);
            }
          }

          const ran: string[] = [];
          const succeeded: string[] = [];
          const worker = createWorker({ broker: await open(), lease: t.longLease, concurrency: 1 }).handle(job, ({ tag }) => {
            ran.push(tag);
          });
          worker.on("job.succeeded", ({ job: info }) => succeeded.push(info.id));
          onTestFinished(() => worker.close({ timeout: 0 }));
          await worker.start();
          await waitFor(() => succeeded.includes(accepted as string), { timeout: t.wait, message: "the accepted job did not run" });
          // Drain: a job sent late (an offline queue flushed on connect) sits before the one enqueued
          // next, and the broker's counts would show it.
          const after = await client.enqueue(job, { tag: "after" });
          await waitFor(() => succeeded.includes(after.id), { timeout: t.wait, message: "the job enqueued after did not run" });
          await expectCounts(createAdmin({ broker: producer }), q, EMPTY, t.wait);
          expect(ran).toEqual(["accepted", "after"]);
          expect(succeeded).toEqual([accepted, after.id]);
        },
        3 * t.ms(30_000) + 120_000,
      );
    });
  });
}
