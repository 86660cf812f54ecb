/**
 * R4 — handler misbehaviour (RELIABILITY.md d.3), in the test process on every adapter: each way a
 * handler can fail maps to ack, retry after backoff, or dead-letter, while a control stream of good
 * jobs keeps completing on the same worker (concurrency 4). H4, a zombie that never settles, fails
 * at its timeout but keeps its slot, and its retry never starts on this worker (docs/concepts/workers.md,
 * timeouts). Then the heap after many handlers that outlive their timeout. Cases that kill the worker process (H7b with
 * isolation, H8) are in the process-harness suite.
 */
import { type Client, createAdmin, createClient, createWorker, defineJob, NonRetryableError, type Worker } from "@jobs/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBroker, selectedAdapters, startTarget, type Target } from "../src/adapters.js";
import { config, TIMINGS } from "../src/config.js";
import { collectGarbage, countingProcessFaults, longestLine, observe, poke, recordEvents, sleep, until } from "../src/observe.js";
import { type Bar, bar, writeReport } from "../src/report.js";

const QUEUE = "r4";
const BACKOFF_MS = 200;
const TIMEOUT_MS = 1_000;
const CONCURRENCY = 4;
/** H7a's own timeout: longer than its 2-s block (a synchronous handler past its timeout fails; core's unit tests cover that). */
const H7A_TIMEOUT_MS = 5_000;
/** The zombie phase runs wider so that 1,000 one-second timeouts take seconds, not minutes. */
const ZOMBIE_CONCURRENCY = 100;
/** How long a heap-phase handler runs on past its timeout, ignoring its signal. */
const OVERDUE_MS = 100;
/** The worker's `overdueAfter`: H4 is reported overdue well within the run. */
const OVERDUE_AFTER_MS = 500;

type Payload = { readonly c: string };

const cyclic = (): unknown => {
  const o: Record<string, unknown> = { a: 1 };
  o.self = o;
  return o;
};
/** The non-Error values of H2/H3. */
const THROWN: Record<string, () => unknown> = {
  str: () => "str",
  null: () => null,
  undefined: () => undefined,
  n42: () => 42,
  obj: () => ({ code: 1 }),
  cycle: cyclic,
};

interface Expectation {
  readonly attempts: number;
  /** "none": never ends (H4 holds its slot, its retry never starts on this worker). */
  readonly end: "dead" | "ok" | "none";
  readonly reason?: string;
  /** SerializedError name or code the dead letter must carry. */
  readonly error?: { readonly name?: string; readonly code?: string; readonly message?: string };
}

const failing = { attempts: 3, end: "dead", reason: "max-attempts" } as const;
const EXPECT: Record<string, Expectation> = {
  H1: { ...failing, error: { name: "Error", message: "x" } },
  ...Object.fromEntries(Object.keys(THROWN).map((k) => [`H2-${k}`, { ...failing, error: { name: "NonError" } }])),
  ...Object.fromEntries(Object.keys(THROWN).map((k) => [`H3-${k}`, { ...failing, error: { name: "NonError" } }])),
  H4: { attempts: 1, end: "none" },
  H5: { ...failing, error: { code: "job-timeout" } },
  H6: { ...failing, error: { code: "job-timeout" } },
  H7a: { attempts: 1, end: "ok" },
  "H9-bigint": { attempts: 1, end: "ok" },
  "H9-cycle": { attempts: 1, end: "ok" },
  H10: { attempts: 1, end: "dead", reason: "non-retryable", error: { code: "non-retryable" } },
};

for (const adapter of selectedAdapters()) {
  describe(`R4 handler misbehaviour on ${adapter}`, () => {
    let target: Target;
    beforeAll(async () => {
      target = await startTarget(adapter, "r4");
    });
    afterAll(async () => {
      await target?.stop();
    });

    it(`R4 cases H1-H6, H7a, H9, H10 beside a control stream (${adapter})`, async () => {
      const controlJobs = config().inProcess.r4ControlJobs;
      const bad = defineJob<Payload>({
        name: "r4.bad",
        queue: QUEUE,
        maxAttempts: 3,
        backoff: { type: "fixed", delay: BACKOFF_MS },
        timeout: TIMEOUT_MS,
      });
      const good = defineJob<{ i: number }>({ name: "r4.good", queue: QUEUE, maxAttempts: 3, timeout: TIMEOUT_MS });
      const clientBroker = createBroker(target.spec);
      const { broker: workerBroker, seen } = observe(createBroker(target.spec));
      const client = createClient({ broker: clientBroker });
      const worker = createWorker({
        broker: workerBroker,
        concurrency: CONCURRENCY,
        lease: TIMINGS.leaseMs,
        overdueAfter: OVERDUE_AFTER_MS,
      });
      const zombies = { started: 0 };
      const h5 = { aborts: [] as { latencyMs: number; reason: string }[], settled: 0 };
      const h6 = { lateResolved: 0 };
      const controlDone = new Set<number>();
      worker.handle(good, (p) => {
        controlDone.add(p.i);
      });
      worker.handle(bad, (p, ctx) => {
        const c = p.c;
        if (c === "H1") throw new Error("x");
        if (c.startsWith("H2-")) throw (THROWN[c.slice(3)] as () => unknown)();
        if (c.startsWith("H3-")) return Promise.reject((THROWN[c.slice(3)] as () => unknown)());
        if (c === "H4") {
          zombies.started++;
          return new Promise(() => {});
        }
        if (c === "H5") {
          const started = performance.now();
          const signal = ctx.signal;
          return new Promise<void>((_, reject) => {
            signal.addEventListener("abort", () => {
              h5.aborts.push({ latencyMs: Math.round(performance.now() - started), reason: String((signal.reason as Error)?.name) });
              h5.settled++;
              reject(signal.reason);
            });
          });
        }
        if (c === "H6")
          return sleep(1_500).then(() => {
            h6.lateResolved++;
          });
        if (c === "H7a") {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2_000);
          return undefined;
        }
        if (c === "H9-bigint") return 10n;
        if (c === "H9-cycle") return cyclic();
        if (c === "H10") throw new NonRetryableError("stop");
        throw new Error(`unknown case ${c}`);
      });
      const events = recordEvents({ worker: worker as Worker<unknown>, client: client as Client, broker: workerBroker });
      await worker.start();
      const started = Date.now();
      const {
        unhandled,
        result: { caseOf, enqueuedAt },
      } = await countingProcessFaults(async () => {
        const caseOf = new Map<string, string>();
        const enqueuedAt = new Map<string, number>();
        for (const c of Object.keys(EXPECT)) {
          // H7a blocks the event loop for 2 s, under its own timeout: no lease lost, and it succeeds.
          const job = await client.enqueue(bad, { c }, c === "H7a" ? { timeout: H7A_TIMEOUT_MS } : {});
          caseOf.set(job.id, c);
          enqueuedAt.set(c, Date.now());
        }
        // The control stream arrives while the misbehaving jobs run.
        for (let i = 0; i < controlJobs; i++) {
          await client.enqueue(good, { i });
          if (i % 10 === 9) await sleep(100);
        }
        const terminal = (): number =>
          events.lines.filter(
            (l) =>
              (l.event === "job.dead-lettered" || l.event === "job.succeeded") &&
              caseOf.has((l.data.job as { id?: string } | undefined)?.id ?? ""),
          ).length;
        const endless = Object.values(EXPECT).filter((e) => e.end === "none").length;
        await until(
          () => terminal() >= caseOf.size - endless && controlDone.size === controlJobs && h6.lateResolved >= 3,
          90_000,
          "every R4 case to end and the control stream to complete",
        );
        // Every settlement of the last events is on the broker before counting.
        await until(() => seen.deliveries.every((d) => d.settled !== undefined), 10_000, "every delivery settled");
        return { caseOf, enqueuedAt };
      });
      const wallMs = Date.now() - started;
      // H4's handler never ends: it still holds its slot.
      const runningAtEnd = worker.running;
      const deadViews = await createAdmin({ broker: workerBroker }).listDeadLetters(QUEUE, { limit: 1_000 });
      events.stop();
      await worker.close({ timeout: "2s" });
      await clientBroker.close();
      await workerBroker.close();

      const idOf = new Map([...caseOf].map(([id, c]) => [c, id]));
      const figures: Record<string, unknown> = {};
      const bars: Bar[] = [];
      const byJob = (id: string, event: string) =>
        events.lines.filter((l) => l.event === event && (l.data.job as { id: string })?.id === id);
      for (const [c, want] of Object.entries(EXPECT)) {
        const id = idOf.get(c) as string;
        const starts = byJob(id, "job.started");
        const failed = byJob(id, "job.failed");
        const dead = byJob(id, "job.dead-lettered");
        const succeeded = byJob(id, "job.succeeded");
        const attempts = starts.map((s) => (s.data.job as { attempt: number }).attempt);
        const gaps: number[] = [];
        for (const f of failed) {
          const attempt = (f.data.job as { attempt: number }).attempt;
          const next = starts.find((s) => (s.data.job as { attempt: number }).attempt === attempt + 1);
          if (next !== undefined) gaps.push(next.at - f.at);
        }
        const view = deadViews.filter((v) => v.id === id);
        const error = (dead[0]?.data.error ?? {}) as { name?: string; code?: string; message?: string; stack?: string };
        const end = dead.length > 0 ? "dead" : succeeded.length > 0 ? "ok" : "none";
        figures[c] = {
          attempts: attempts.length,
          end,
          reason: dead[0]?.data.reason,
          error: { name: error.name, code: error.code, message: error.message?.slice(0, 120), hasStack: typeof error.stack === "string" },
          backoffGapsMs: gaps,
          timeToDlqMs: dead[0] === undefined ? undefined : dead[0].at - (enqueuedAt.get(c) ?? 0),
          dlqEntries: view.length,
        };
        bars.push(bar(`${c} attempts`, attempts.length, `= ${want.attempts}`, attempts.length === want.attempts));
        bars.push(
          bar(
            `${c} attempt numbers`,
            attempts.join(","),
            "1..n once each",
            attempts.every((a, i) => a === i + 1),
          ),
        );
        bars.push(
          bar(
            `${c} terminal state`,
            end,
            `= ${want.end}`,
            end === want.end && dead.length + succeeded.length === (want.end === "none" ? 0 : 1),
          ),
        );
        if (want.end === "dead") {
          bars.push(bar(`${c} dlq reason`, String(dead[0]?.data.reason), `= ${want.reason}`, dead[0]?.data.reason === want.reason));
          bars.push(bar(`${c} dlq entries`, view.length, "= 1", view.length === 1));
          const e = want.error ?? {};
          const ok =
            (e.name === undefined || error.name === e.name) &&
            (e.code === undefined || error.code === e.code) &&
            (e.message === undefined || error.message === e.message) &&
            (view[0]?.error.name === error.name || view.length === 0);
          bars.push(bar(`${c} dlq error`, `${error.name}/${error.code ?? ""}`, JSON.stringify(e), ok));
          if (c === "H1")
            bars.push(bar("H1 dlq stack", typeof view[0]?.error.stack === "string", "kept", typeof view[0]?.error.stack === "string"));
        }
        if (want.attempts > 1) {
          const min = gaps.length === 0 ? -1 : Math.min(...gaps);
          bars.push(
            bar(
              `${c} backoff gaps`,
              min,
              `>= ${BACKOFF_MS} ms (${want.attempts - 1} gaps)`,
              gaps.length === want.attempts - 1 && min >= BACKOFF_MS,
            ),
          );
        }
      }
      const h6Id = idOf.get("H6") as string;
      const h6Acks = seen.deliveries.filter((d) => d.settled === "ack" && d.body.includes(h6Id)).length;
      const leaseLost = events.lines.filter((l) => l.event === "job.lease-lost").length;
      const errorsEmitted = events.lines.filter((l) => l.event === "error").length;
      const h4Id = idOf.get("H4") as string;
      const h4Failed = byJob(h4Id, "job.failed").map((l) => (l.data.error as { code?: string }).code);
      const h4Overdue = byJob(h4Id, "job.overdue").length;
      const h4Deferred = byJob(h4Id, "job.deferred").filter((l) => (l.data.job as { attempt: number }).attempt === 2).length;
      const controlStartsDup = events.lines.filter(
        (l) => l.event === "job.started" && (l.data.job as { name: string }).name === "r4.good",
      ).length;
      Object.assign(figures, {
        controlJobs,
        controlCompleted: controlDone.size,
        controlStarts: controlStartsDup,
        zombiesStarted: zombies.started,
        h4Failed,
        h4Overdue,
        h4RetryDeferred: h4Deferred,
        runningAtEnd,
        h5Aborts: h5.aborts,
        h6LateResolutions: h6.lateResolved,
        h6Acks,
        leaseLost,
        workerErrorEvents: errorsEmitted,
        unhandledRejections: unhandled,
        workerPid: process.pid,
        longestEventLineBytes: longestLine(events.lines),
        deliveries: seen.deliveries.length,
        wallMs,
      });
      bars.push(bar("control jobs completed", controlDone.size, `= ${controlJobs}`, controlDone.size === controlJobs));
      bars.push(bar("control jobs run once", controlStartsDup, `= ${controlJobs}`, controlStartsDup === controlJobs));
      bars.push(
        bar(
          "H4 zombie: failed at its timeout, keeps its slot, reported overdue once, its retry never started here",
          `started ${zombies.started}, failed ${h4Failed.join(",")}, overdue ${h4Overdue}, retry deferred ${h4Deferred}, running ${runningAtEnd}`,
          "started 1, failed job-timeout, overdue 1, retry deferred >= 1, running >= 1",
          zombies.started === 1 &&
            h4Failed.length === 1 &&
            h4Failed[0] === "job-timeout" &&
            h4Overdue === 1 &&
            h4Deferred >= 1 &&
            runningAtEnd >= 1,
        ),
      );
      bars.push(
        bar(
          "H5 aborted by the timeout, no zombie",
          h5.aborts.map((a) => a.reason).join(","),
          "3 × JobTimeoutError, all settled",
          h5.aborts.length === 3 &&
            h5.settled === 3 &&
            h5.aborts.every((a) => a.reason === "JobTimeoutError" && a.latencyMs >= TIMEOUT_MS - 5),
        ),
      );
      bars.push(bar("H6 late results acked", h6Acks, "= 0", h6Acks === 0 && h6.lateResolved === 3));
      bars.push(bar("lease-lost events (H7a blocks 2 s < lease)", leaseLost, "= 0", leaseLost === 0));
      bars.push(bar("worker error events", errorsEmitted, "= 0", errorsEmitted === 0));
      bars.push(bar("unhandled rejections", unhandled, "= 0", unhandled === 0));
      const report = writeReport({
        test: "R4",
        adapter,
        seed: 0,
        config: {
          concurrency: CONCURRENCY,
          maxAttempts: 3,
          backoffMs: BACKOFF_MS,
          timeoutMs: TIMEOUT_MS,
          controlJobs,
          tier: config().tier,
        },
        figures,
        bars,
      });
      expect(report.bars.filter((b) => !b.ok)).toEqual([]);
      expect(report.verdict).toBe("pass");
    });

    it(`R4 heap after H4 zombie jobs (${adapter})`, async () => {
      const count = config().inProcess.r4ZombieJobs;
      const zombie = defineJob<{ i: number }>({ name: "r4.zombie", queue: "r4z", maxAttempts: 1, timeout: TIMEOUT_MS });
      const clientBroker = createBroker(target.spec);
      const workerBroker = createBroker(target.spec);
      const client = createClient({ broker: clientBroker });
      const worker = createWorker({ broker: workerBroker, concurrency: ZOMBIE_CONCURRENCY, lease: TIMINGS.leaseMs });
      let dead = 0;
      let started = 0;
      // Each handler ignores its signal and ends OVERDUE_MS after its timeout: it holds its slot until then.
      worker.handle(zombie, () => {
        started++;
        return sleep(TIMEOUT_MS + OVERDUE_MS);
      });
      worker.on("job.dead-lettered", () => {
        dead++;
        poke();
      });
      await worker.start();
      const run = async (n: number): Promise<void> => {
        const before = dead;
        for (let i = 0; i < n; i += 50) {
          await client.enqueueMany(Array.from({ length: Math.min(50, n - i) }, (_, k) => ({ job: zombie, payload: { i: i + k } })));
        }
        await until(() => dead - before >= n, 120_000, `${n} zombie jobs dead-lettered`);
        await until(() => worker.running === 0, 10_000, "every overdue handler ended");
      };
      // Warm-up: connections, scripts, JIT and the broker's own structures exist before the baseline.
      await run(ZOMBIE_CONCURRENCY);
      collectGarbage();
      const baseline = process.memoryUsage().heapUsed;
      const t0 = Date.now();
      await run(count);
      const ms = Date.now() - t0;
      collectGarbage();
      const after = process.memoryUsage().heapUsed;
      const growthMb = (after - baseline) / 1024 / 1024;
      const running = worker.running;
      await worker.close({ timeout: "1s" });
      await clientBroker.close();
      await workerBroker.close();
      const report = writeReport({
        test: "R4-heap",
        adapter,
        seed: 0,
        config: { zombies: count, concurrency: ZOMBIE_CONCURRENCY, timeoutMs: TIMEOUT_MS, tier: config().tier },
        figures: {
          zombiesStarted: started,
          deadLettered: dead,
          heapBaselineMb: +(baseline / 1048576).toFixed(2),
          heapAfterMb: +(after / 1048576).toFixed(2),
          growthMb: +growthMb.toFixed(2),
          runningAfter: running,
          ms,
        },
        bars: [
          bar("zombies dead-lettered", dead - ZOMBIE_CONCURRENCY, `= ${count}`, dead - ZOMBIE_CONCURRENCY === count),
          bar("slots freed once the overdue handlers ended (running after)", running, "= 0", running === 0),
          bar("heap growth after gc()", +growthMb.toFixed(2), "<= 5 MB", growthMb <= 5),
        ],
      });
      expect(report.bars.filter((b) => !b.ok)).toEqual([]);
      expect(report.verdict).toBe("pass");
    });
  });
}
