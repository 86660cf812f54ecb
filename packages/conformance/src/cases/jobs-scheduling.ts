/**
 * Job cases on when and in which order jobs start: a delayed job never starts before its runAt
 * (even past the broker's native delay limit, which core re-delays), and a backlog starts highest
 * priority first (native or emulated by core).
 */
import { PRIORITIES, type Priority } from "@jobs/core";
import { waitFor } from "@jobs/core/testing";
import { describe, expect, it } from "vitest";
import { group, type JobFixture, type RecordedWorker } from "../internal/fixture.js";
import { EMPTY, type Timing } from "../internal/harness.js";
import type { Counted } from "../internal/jobs.js";
import type { ConformanceOptions } from "../options.js";

/**
 * Runs a worker, enqueues one job delayed by `delay` and waits for it to succeed; asserts that it
 * started once, as attempt 1, not before its runAt.
 */
async function runDelayedOnce(
  f: JobFixture,
  name: string,
  delay: number,
  t: Timing,
): Promise<{ readonly worker: RecordedWorker<undefined>; readonly startedAt: number; readonly runAt: number }> {
  const job = f.job<Counted>(name);
  const starts: { at: number; attempt: number }[] = [];
  const worker = await f.run(job, (_p, { job }) => {
    starts.push({ at: Date.now(), attempt: job.attempt });
  });
  const done = worker.next("job.succeeded", delay + t.wait);
  const enqueued = await f.client.enqueue(job, { n: 1 }, { delay });
  await done;
  expect(starts).toHaveLength(1);
  expect(starts[0]!.attempt).toBe(1);
  expect(starts[0]!.at).toBeGreaterThanOrEqual(enqueued.runAt);
  return { worker, startedAt: starts[0]!.at, runAt: enqueued.runAt };
}

/** Scheduling: delayed jobs never start early (even beyond the broker's native delay), priority under a backlog. */
export function jobSemanticsScheduling(options: ConformanceOptions): void {
  group(options, "jobs: delays and priority", ({ caps, t, jobCase }) => {
    it(
      "never starts a delayed job before its runAt, and starts it soon after",
      async () => {
        const { startedAt, runAt } = await runDelayedOnce(await jobCase("delayed"), "conformance.delayed", t.ms(400), t);
        expect(startedAt - runAt).toBeLessThan(t.ms(1_000) + 2 * t.resolution);
      },
      t.testTimeout,
    );

    const beyond = Number.isFinite(caps.maxDelayMs) && caps.maxDelayMs <= t.ms(2_000);
    describe.skipIf(!beyond)("delay beyond the native limit [needs capability: maxDelayMs ≤ 2 s]", () => {
      it(
        "runs a job delayed past maxDelayMs once, at or after runAt, as attempt 1 (re-delays are not attempts)",
        async () => {
          const f = await jobCase("longdelay");
          const { worker } = await runDelayedOnce(f, "conformance.longdelay", Math.ceil(2.5 * caps.maxDelayMs), t);
          const events = worker.events;
          expect(events.filter((e) => e.type === "job.deferred").length).toBeGreaterThanOrEqual(1);
          expect(events.filter((e) => e.type === "job.failed" || e.type === "job.retrying" || e.type === "error")).toEqual([]);
          await f.expectCounts(EMPTY);
        },
        t.testTimeout,
      );
    });

    it(
      "starts the highest priority first from a backlog (native or emulated by core)",
      async () => {
        const f = await jobCase("priority");
        const job = f.job<{ label: string }>("conformance.priority");
        // The backlog builds up before any worker runs.
        // One job per level: with emulated priority a worker only knows what each level's queue already handed it.
        const order: Priority[] = ["low", "trivial", "normal", "high", "critical"];
        for (const [i, priority] of order.entries()) await f.client.enqueue(job, { label: `${priority}-${i}` }, { priority });
        await f.expectCounts({ ...EMPTY, waiting: order.length });
        const started: string[] = [];
        const worker = await f.run(
          job,
          (payload) => {
            started.push(payload.label.split("-")[0] as string);
          },
          { concurrency: 1 },
        );
        await waitFor(() => worker.of("job.succeeded").length >= order.length, { timeout: t.wait, message: "backlog not drained" });
        const rank = (p: string): number => PRIORITIES.indexOf(p as Priority);
        expect(started[0]).toBe("critical");
        expect(started).toEqual([...order].sort((a, b) => rank(b) - rank(a)));
      },
      t.testTimeout,
    );
  });
}
