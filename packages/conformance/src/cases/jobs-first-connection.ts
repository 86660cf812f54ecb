/**
 * Job cases before the broker was ever reached (docs/concepts/workers.md, "Before the broker is
 * reached"): an enqueue rejected then is definite, so it is never delivered once the broker comes
 * up. They run only when the adapter's test gives a private server the suite may take down and
 * bring back (`firstConnection`); the memory broker has no connection to miss.
 */
import { type Broker, createAdmin, createClient, createWorker, defineJob, JobsError } from "@jobs/core";
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
          const first = await client.enqueue(job, { tag: "try-0" }).then(
            () => undefined,
            (error: unknown) => error,
          );
          expect(first, "an enqueue with the broker down resolved").toBeDefined();
          expect(expectJobsError(first, ["broker-connection"]).retryable).toBe(true);
          rejected.push("try-0");

          await server.start();
          down = false;
          // The same client, once the broker is up. Until the broker's own reconnect lands, an
          // enqueue may still be refused definitely (each such job must never run either); a server
          // still starting (loading its data, JetStream not ready) may also answer with another
          // retryable error, whose job may or may not run: those are left out of the ledger.
          const deadline = performance.now() + t.ms(30_000);
          const uncertain: string[] = [];
          let accepted: string | undefined;
          let acceptedTag = "";
          for (let i = 1; accepted === undefined; i++) {
            const tag = `try-${i}`;
            try {
              accepted = (await client.enqueue(job, { tag })).id;
              acceptedTag = tag;
            } catch (error) {
              expect(JobsError.isInstance(error) && error.retryable, `a non-retryable error once the broker is up: ${String(error)}`).toBe(
                true,
              );
              if ((error as JobsError).code === "broker-connection") rejected.push(tag);
              else uncertain.push(tag);
              expect(performance.now(), `no enqueue accepted ${t.ms(30_000)} ms after the broker came up`).toBeLessThan(deadline);
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
          expect(ran.filter((tag) => !uncertain.includes(tag))).toEqual([acceptedTag, "after"]);
          expect(succeeded.filter((id) => id === accepted || id === after.id)).toEqual([accepted, after.id]);
          expect(
            ran.filter((tag) => rejected.includes(tag)),
            "a rejected enqueue ran",
          ).toEqual([]);
        },
        3 * t.ms(30_000) + 120_000,
      );
    });
  });
}
