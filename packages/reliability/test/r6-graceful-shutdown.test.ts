/**
 * R6 — graceful shutdown with in-flight jobs (RELIABILITY.md d.3), on forked worker processes
 * whose entry handles SIGTERM as an application does (docs/concepts/shutdown.md) but never calls
 * `process.exit`: the process must end by itself. Per adapter, one harness runs the cases in turn
 * on one queue (G1, G2, G5, then G3 behind a proxy), each with a fresh worker A that holds the jobs
 * (concurrency 8, prefetch 16) and a fresh worker B that takes what A hands back; one drain at the
 * end covers them all. G4 (close twice, close during reconnect, enqueue after close) runs in process.
 */
import { type Broker, BrokerClosedError, createClient, createWorker } from "@jobs/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AdapterName, createBroker, selectedAdapters, startTarget, type Target } from "../src/adapters.js";
import { check } from "../src/checker.js";
import { config, TIMINGS } from "../src/config.js";
import { createHarness, type Harness, type Proc } from "../src/harness.js";
import { DRAIN, sample } from "../src/harness-scenarios.js";
import { skipCase } from "../src/in-process.js";
import type { LedgerLine } from "../src/ledger.js";
import { healthCheckOptions, PROCESS_QUEUE, proxiedSpec, proxyFor } from "../src/network-scenarios.js";
import { poll, startCounter, testProducer } from "../src/process-cases.js";
import { chaosJob } from "../src/processes/params.js";
import { MODE_WORKER_ENTRY, type ModeWorkerParams } from "../src/processes/worker-modes-params.js";
import type { ProxyProcess } from "../src/proxy.js";
import { type Bar, bar, writeReport } from "../src/report.js";

const cfg = config().processLevel.r6;
/** Resource types a process may still hold when it ends by itself: its stdio pipes and the harness's IPC channel. */
const HARNESS_RESOURCES = new Set(["PipeWrap", "TTYWrap"]);

/** One case as it happened. */
interface CaseRun {
  readonly name: string;
  readonly prefix: string;
  readonly pid: number;
  readonly sigtermAt: number;
  readonly secondAt?: number;
  readonly exit: { code: number | null; signal: NodeJS.Signals | null; ms: number };
  readonly deadlineMs: number;
}

async function countsWaiting(broker: Broker): Promise<number> {
  const c = await broker.counts(PROCESS_QUEUE).catch(() => undefined);
  return c === undefined ? -1 : c.waiting + c.delayed;
}

for (const adapter of selectedAdapters()) {
  if (adapter === "memory") {
    skipCase(
      "R6",
      adapter,
      "capability outOfProcess absent (worker processes cannot share the memory broker); core's close() is unit-tested on it",
    );
    continue;
  }
  describe(`R6 graceful shutdown [${adapter}]`, () => {
    let target: Target;
    let h: Harness;
    let inspector: Broker;
    const runs: CaseRun[] = [];
    beforeAll(async () => {
      target = await startTarget(adapter, "r6");
      h = createHarness("R6", adapter);
      inspector = createBroker(target.spec);
    });
    afterAll(async () => {
      await inspector?.close().catch(() => {});
      await h?.close();
      await target?.stop();
    });

    /** One case: A holds 16 jobs (8 running), B starts, A gets SIGTERM (and a second one for G5). */
    async function runCase(options: {
      readonly name: string;
      readonly jobMs: number;
      readonly deadlineMs: number;
      readonly secondSignalAfterMs?: number;
      readonly proxy?: ProxyProcess;
    }): Promise<CaseRun> {
      const prefix = `${options.name.toLowerCase()}-`;
      const base: ModeWorkerParams = {
        spec: target.spec,
        queue: PROCESS_QUEUE,
        concurrency: cfg.concurrency,
        prefetch: cfg.prefetch,
        leaseMs: TIMINGS.leaseMs,
        shutdownTimeoutMs: options.deadlineMs,
      };
      const aSpec = options.proxy === undefined ? target.spec : proxiedSpec(target.spec, options.proxy.port);
      // B is forked now and starts consuming only once A holds every job (a fresh process takes seconds to start).
      const b: Proc = h.forkWorker({ ...base, capMs: 300, startOnGo: true }, MODE_WORKER_ENTRY);
      // B listens for "go" once it said "forked" (a message sent before would be dropped).
      const bForked = new Promise<void>((resolve) => b.child.on("message", (m: { type?: string }) => m.type === "forked" && resolve()));
      const a = await h.spawnWorker({ ...base, spec: aSpec, brokerOptions: healthCheckOptions(adapter) }, MODE_WORKER_ENTRY);
      const aStarts = startCounter(a);
      const producer = testProducer(h, target.spec, PROCESS_QUEUE);
      const n = cfg.prefetch;
      await Promise.all(Array.from({ length: n }, (_, i) => producer.enqueue({ k: `${prefix}${i}`, ms: options.jobMs })));
      await producer.close();
      await poll(() => aStarts.count >= cfg.concurrency, 30_000, `A running ${cfg.concurrency} jobs`);
      await poll(async () => (await countsWaiting(inspector)) === 0, 10_000, "A to hold every job");
      await bForked;
      const tGo = Date.now();
      h.send(b, { type: "go" });
      await b.ready;
      if (options.proxy !== undefined) {
        await options.proxy.reset();
        await options.proxy.refuse();
      }
      // A shutdown hands back A's unfinished jobs: their next start elsewhere is explained by it.
      const sigtermAt = h.fault("kill", { pid: a.pid, mode: "SIGTERM" }).t;
      console.log(`[R6 ${adapter} ${options.name}] A held its jobs; B consuming ${sigtermAt - tGo} ms after go; SIGTERM`);
      a.child.kill("SIGTERM");
      let secondAt: number | undefined;
      if (options.secondSignalAfterMs !== undefined) {
        await new Promise((r) => setTimeout(r, options.secondSignalAfterMs)); // the scenario's schedule
        secondAt = Date.now();
        a.child.kill("SIGTERM");
      }
      const exited = await Promise.race([
        a.exited,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), options.deadlineMs + 15_000).unref()),
      ]);
      const exit = exited === undefined ? { code: null, signal: null, ms: -1 } : { ...exited, ms: Date.now() - sigtermAt };
      if (exited === undefined) await h.kill(a);
      if (options.proxy !== undefined) await options.proxy.pass();
      await h.until(
        () => Array.from({ length: n }, (_, i) => `${prefix}${i}`).every((k) => h.done.has(k)),
        60_000,
        `${options.name} jobs done`,
      );
      // B goes away gracefully, so the next case's A gets the jobs.
      h.send(b, { type: "close" });
      await b.exited;
      const run: CaseRun = {
        name: options.name,
        prefix,
        pid: a.pid,
        sigtermAt,
        ...(secondAt === undefined ? {} : { secondAt }),
        exit,
        deadlineMs: options.deadlineMs,
      };
      runs.push(run);
      return run;
    }

    it(`G1, G2, G5, G3: finish what fits the deadline, hand back the rest, exit by themselves (tier ${config().tier})`, async () => {
      const started = Date.now();
      await runCase({ name: "G1", jobMs: cfg.g1JobMs, deadlineMs: cfg.g1DeadlineMs });
      await runCase({ name: "G2", jobMs: cfg.g2JobMs, deadlineMs: cfg.g2DeadlineMs });
      await runCase({ name: "G5", jobMs: cfg.g2JobMs, deadlineMs: cfg.g1DeadlineMs, secondSignalAfterMs: 1_000 });
      const proxy = await proxyFor(h, target);
      await runCase({ name: "G3", jobMs: cfg.g1JobMs, deadlineMs: cfg.g2DeadlineMs, proxy });
      await proxy.close();
      // The drain (d.1) with a fresh worker: a job acked during shutdown that comes back shows up as a duplicate.
      await h.spawnWorker(
        { spec: target.spec, queue: PROCESS_QUEUE, concurrency: 8, prefetch: 8, leaseMs: TIMINGS.leaseMs, capMs: 300 },
        MODE_WORKER_ENTRY,
      );
      const drain = await h.drain({
        broker: inspector,
        queue: PROCESS_QUEUE,
        quietMs: DRAIN.quietMs,
        capMs: DRAIN.capMs,
        lastFaultT: Date.now(),
      });
      await h.closeWorkers();
      const read = h.read();
      const c = check({ lines: read.lines, faults: read.faults, truncatedLines: read.truncated });
      const bars: Bar[] = [
        bar("lost", c.lost.length, "= 0", c.lost.length === 0),
        bar("phantom", c.phantom.length, "= 0", c.phantom.length === 0),
        bar("duplicates unexplained", c.unexplained.length, "= 0", c.unexplained.length === 0),
        bar("drained within cap", drain.drained, "counts 0 and quiet 3 × lease", drain.drained),
      ];
      const figures: Record<string, unknown> = {
        accepted: c.accepted,
        completed: c.completed,
        duplicatesExplained: c.explainedDuplicates,
        unexplainedSample: sample(c.unexplained),
        lostSample: sample(c.lost),
        drainMs: drain.drainMs,
        wallMs: Date.now() - started,
      };
      for (const run of runs) {
        const f = caseFigures(run, read.lines);
        figures[run.name] = f;
        bars.push(...caseBars(run, f));
      }
      const report = writeReport({
        test: "R6",
        adapter,
        seed: 0,
        config: { ...cfg, timings: TIMINGS, ledgers: h.dir },
        figures,
        bars,
        faults: h.faults,
      });
      console.log(`[R6 ${adapter}] ${report.verdict}: ${JSON.stringify(report.bars.filter((b) => !b.ok))} ${JSON.stringify(figures)}`);
      expect(report.verdict).toBe("pass");
    });

    it("G4: close() twice, close() during reconnect, enqueue after close → typed error, no hang", async () => {
      const proxy = await proxyFor(h, target);
      const results: Record<string, unknown> = {};
      const timed = async (what: string, p: Promise<unknown>, limitMs: number): Promise<Bar> => {
        const t = Date.now();
        const outcome = await Promise.race([
          p.then(
            () => "resolved",
            (e: unknown) => (e as Error)?.name,
          ),
          new Promise((r) => setTimeout(() => r("hung"), limitMs + 5_000).unref()),
        ]);
        const ms = Date.now() - t;
        results[what] = { outcome, ms };
        return bar(`${what} settles`, `${String(outcome)} in ${ms} ms`, `≤ ${limitMs} ms, no hang`, outcome !== "hung" && ms <= limitMs);
      };
      const bars: Bar[] = [];
      // Twice, concurrently.
      const b1 = createBroker(target.spec);
      const w1 = createWorker({ broker: b1, lease: TIMINGS.leaseMs }).handle(chaosJob(PROCESS_QUEUE), () => {});
      await w1.start();
      const first = w1.close({ timeout: 1_000 });
      const second = w1.close({ timeout: 1_000 });
      bars.push(bar("close() twice returns one promise", first === second, "true", first === second));
      bars.push(await timed("worker close twice", Promise.all([first, second]), 3_000));
      bars.push(await timed("broker close twice", Promise.all([b1.close(), b1.close()]), 3_000));
      // During reconnect: the proxy resets and refuses, the broker reconnects in a loop.
      const b2 = createBroker(proxiedSpec(target.spec, proxy.port), healthCheckOptions(adapter as AdapterName));
      b2.on("error", () => {});
      const w2 = createWorker({ broker: b2, lease: TIMINGS.leaseMs }).handle(chaosJob(PROCESS_QUEUE), () => {});
      await w2.start();
      await proxy.reset();
      await proxy.refuse();
      await new Promise((r) => setTimeout(r, 1_500)); // the scenario's schedule: let it start reconnecting
      bars.push(await timed("worker close during reconnect", w2.close({ timeout: 1_000 }), 1_000 + 2_000));
      bars.push(await timed("broker close during reconnect", b2.close(), 2_000));
      await proxy.pass();
      // Enqueue after close.
      const b3 = createBroker(target.spec);
      const client = createClient({ broker: b3 });
      await b3.close();
      let error: unknown;
      await client.enqueue(chaosJob(PROCESS_QUEUE), { k: "g4", ms: 1 }).catch((e: unknown) => {
        error = e;
      });
      results.enqueueAfterClose = (error as Error)?.name ?? "accepted";
      bars.push(bar("enqueue after close", String((error as Error)?.name), "BrokerClosedError", error instanceof BrokerClosedError));
      await proxy.close();
      const report = writeReport({ test: "R6-G4", adapter, seed: 0, figures: results, bars });
      console.log(`[R6-G4 ${adapter}] ${report.verdict}: ${JSON.stringify(results)}`);
      expect(report.verdict).toBe("pass");
    });
  });
}

/** What one case's ledger lines say. */
function caseFigures(run: CaseRun, lines: readonly LedgerLine[]) {
  const mine = lines.filter((l) => typeof l.id === "string" && l.id.startsWith(run.prefix));
  const onA = mine.filter((l) => l.pid === run.pid);
  const startedOnA = new Set(onA.filter((l) => l.kind === "start" && l.t <= run.sigtermAt + 100).map((l) => l.id as string));
  const lateStartsOnA = onA.filter((l) => l.kind === "start" && l.t > run.sigtermAt + 100).length;
  const doneOnA = new Set(onA.filter((l) => l.kind === "done").map((l) => l.id as string));
  const ackedOnA = new Set(onA.filter((l) => l.kind === "ack").map((l) => l.id as string));
  const ackedUnfinished = [...ackedOnA].filter((k) => !doneOnA.has(k)).length;
  const starts = new Map<string, number>();
  for (const l of mine) if (l.kind === "start") starts.set(l.id as string, (starts.get(l.id as string) ?? 0) + 1);
  const doneOnAStartedAgain = [...doneOnA].filter((k) => (starts.get(k) ?? 0) > 1).length;
  // Released at once: jobs A held but never started, first started elsewhere after SIGTERM.
  const released = [...starts.keys()].filter((k) => !startedOnA.has(k));
  const releaseMs = released.map((k) => {
    const first = mine.find((l) => l.kind === "start" && l.id === k && l.pid !== run.pid);
    return first === undefined ? -1 : first.t - run.sigtermAt;
  });
  const unfinishedOnA = [...startedOnA].filter((k) => !doneOnA.has(k));
  const unfinishedCompleted = unfinishedOnA.filter((k) => mine.some((l) => l.kind === "done" && l.id === k && l.pid !== run.pid)).length;
  const exiting = lines.find((l) => l.kind === "exiting" && l.pid === run.pid);
  const resources = (exiting?.resources as string[] | undefined) ?? ["(no exiting line)"];
  return {
    startedBeforeSigterm: startedOnA.size,
    lateStartsOnA,
    finishedOnA: doneOnA.size,
    ackedOnA: ackedOnA.size,
    ackedUnfinished,
    doneOnAStartedAgain,
    released: released.length,
    releaseMaxMs: releaseMs.length === 0 ? 0 : Math.max(...releaseMs),
    releaseMissing: releaseMs.filter((ms) => ms < 0).length,
    unfinishedOnA: unfinishedOnA.length,
    unfinishedCompletedElsewhere: unfinishedCompleted,
    exitCode: run.exit.code,
    exitSignal: run.exit.signal,
    exitMs: run.exit.ms,
    exitAfterSecondSignalMs: run.secondAt === undefined || run.exit.ms < 0 ? undefined : run.sigtermAt + run.exit.ms - run.secondAt,
    resourcesAtExit: resources,
  };
}

function caseBars(run: CaseRun, f: ReturnType<typeof caseFigures>): Bar[] {
  const n = run.name;
  const exitLimit = run.secondAt === undefined ? run.deadlineMs + 2_000 : run.secondAt - run.sigtermAt + 1_000 + 2_000;
  const stray = f.resourcesAtExit.filter((r) => !HARNESS_RESOURCES.has(r));
  const bars: Bar[] = [
    bar(`${n} starts on A after SIGTERM + 100 ms`, f.lateStartsOnA, "= 0", f.lateStartsOnA === 0),
    bar(`${n} exit code`, String(f.exitCode ?? f.exitSignal), "0 (ends by itself)", f.exitCode === 0),
    bar(`${n} exit ms after SIGTERM`, f.exitMs, `0…${exitLimit}`, f.exitMs >= 0 && f.exitMs <= exitLimit),
    bar(`${n} resources at exit besides stdio/IPC`, stray.join(",") || "none", "none", stray.length === 0),
    bar(`${n} unfinished jobs acked on A`, f.ackedUnfinished, "= 0", f.ackedUnfinished === 0),
    bar(
      `${n} unfinished on A completed by another worker`,
      `${f.unfinishedCompletedElsewhere}/${f.unfinishedOnA}`,
      "all",
      f.unfinishedCompletedElsewhere === f.unfinishedOnA,
    ),
  ];
  if (n !== "G3") {
    // Finished before the deadline ⇒ acked once, never run again (G3's acks cannot reach the broker).
    bars.push(
      bar(
        `${n} finished on A but acked ≠ once or run again`,
        f.finishedOnA - f.ackedOnA + f.doneOnAStartedAgain,
        "= 0",
        f.ackedOnA === f.finishedOnA && f.doneOnAStartedAgain === 0,
      ),
    );
    bars.push(
      bar(
        `${n} prefetched released → started elsewhere, max ms`,
        f.releaseMaxMs,
        "≤ 1000",
        f.releaseMissing === 0 && f.releaseMaxMs <= 1_000,
      ),
    );
  }
  if (n === "G1")
    bars.push(
      bar(
        "G1 all started jobs finished on A",
        `${f.finishedOnA}/${f.startedBeforeSigterm}`,
        "all",
        f.finishedOnA === f.startedBeforeSigterm,
      ),
    );
  return bars;
}
