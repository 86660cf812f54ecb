/**
 * R7 soak (RELIABILITY.md d.3, tier B): a producer at 200 jobs/s and two workers for N minutes
 * (R7a), or the same load through a proxy that resets every connection every 2 s (R7b, churn).
 * Every process samples itself after `gc()` every 10 s (`processes/sampler.ts`); the orchestrator
 * samples the queue depth. The figures: heap slope and delta after warm-up, RSS delta, handle
 * range, event-loop delay p99, warnings, depth, latency; and the checker's buckets.
 */
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { physicalQueues } from "@jobs/core/adapter";
import { type AdapterName, createBroker, startTarget } from "./adapters.js";
import { quantile } from "./checker.js";
import { config, TIMINGS } from "./config.js";
import { createHarness } from "./harness.js";
import type { ScenarioResult } from "./harness-scenarios.js";
import { type LedgerLine, readLedgers } from "./ledger.js";
import { drainAndCheck, healthCheckOptions, PROCESS_QUEUE, proxiedSpec, proxyFor } from "./network-scenarios.js";
import type { ResetNotice } from "./processes/sampler.js";
import { MODE_WORKER_ENTRY, type ModeWorkerParams } from "./processes/worker-modes-params.js";

const PRODUCER_ENTRY = join(import.meta.dirname, "processes", "producer-sampled.ts");
const MB = 1024 * 1024;

/** The soak's length in minutes: the tier's, or `JOBS_RELIABILITY_SOAK_MINUTES` (R7a and R7b alike). */
export function soakMinutes(kind: "a" | "b"): number {
  const cfg = config().processLevel.r7;
  const override = Number(process.env.JOBS_RELIABILITY_SOAK_MINUTES);
  if (Number.isFinite(override) && override > 0) return override;
  return kind === "a" ? cfg.minutes : cfg.churnMinutes;
}

/** One process's samples, summarised. */
export interface ProcessMemory {
  readonly pid: number;
  readonly role: string;
  readonly samples: number;
  readonly heapDeltaMb: number;
  readonly heapSlopeMbPerMin: number;
  readonly rssDeltaMb: number;
  readonly resourcesMin: number;
  readonly resourcesMax: number;
  readonly resourcesAtWarmUp: number;
  /** The highest single reading after warm-up (a reconnect in progress included): reported, not judged. */
  readonly resourcesPeakMax: number;
  /** The lowest single reading after warm-up, readings near a reset included (R7b): reported, not judged. */
  readonly resourcesAnyMin: number;
  readonly eldP99MaxMs: number;
  readonly warnings: number;
}

/** Least-squares slope of y over x. */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
    den += ((xs[i] as number) - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** Summarises the `sample` lines of each process after `warmUpEnd`. */
export function memoryFigures(lines: readonly LedgerLine[], warmUpEnd: number, roles: ReadonlyMap<number, string>): ProcessMemory[] {
  const byPid = new Map<number, LedgerLine[]>();
  for (const l of lines) if (l.kind === "sample") byPid.set(l.pid, [...(byPid.get(l.pid) ?? []), l]);
  const out: ProcessMemory[] = [];
  for (const [pid, all] of byPid) {
    all.sort((a, b) => a.t - b.t);
    const warm = all.filter((l) => l.t <= warmUpEnd).at(-1) ?? all[0];
    const after = all.filter((l) => l.t >= (warm?.t ?? 0));
    const last = after.at(-1);
    if (warm === undefined || last === undefined) continue;
    const num = (l: LedgerLine, f: string): number => Number(l[f]);
    const resources = after.map((l) => num(l, "resources"));
    out.push({
      pid,
      role: roles.get(pid) ?? "?",
      samples: after.length,
      heapDeltaMb: (num(last, "heapUsed") - num(warm, "heapUsed")) / MB,
      heapSlopeMbPerMin: slope(
        after.map((l) => l.t / 60_000),
        after.map((l) => num(l, "heapUsed") / MB),
      ),
      rssDeltaMb: (num(last, "rss") - num(warm, "rss")) / MB,
      resourcesMin: Math.min(...resources),
      resourcesMax: Math.max(...resources),
      resourcesAtWarmUp: num(warm, "resources"),
      resourcesPeakMax: Math.max(...after.map((l) => num(l, "resourcesPeak") || num(l, "resources"))),
      resourcesAnyMin: Math.min(...after.map((l) => (l.resourcesAny === undefined ? num(l, "resources") : num(l, "resourcesAny")))),
      eldP99MaxMs: Math.max(...after.map((l) => num(l, "eldP99Ms"))),
      warnings: lines.filter((l) => l.kind === "warning" && l.pid === pid).length,
    });
  }
  return out;
}

/** R7a (`churn` false) or R7b (`churn` true). */
export async function runSoak(options: { readonly test: string; readonly adapter: AdapterName; readonly churn: boolean }): Promise<
  ScenarioResult & {
    readonly memory: readonly ProcessMemory[];
    readonly warmUpMs: number;
    readonly durationMs: number;
    readonly depth: { readonly atOneMinute: number; readonly atEnd: number; readonly max: number };
  }
> {
  const cfg = config().processLevel.r7;
  const durationMs = Math.round(soakMinutes(options.churn ? "b" : "a") * 60_000);
  // The warm-up: the tier's 2 min, or 40 % of a shortened run.
  const warmUpMs = Math.min(cfg.warmUpMs, Math.round(durationMs * 0.4));
  const started = Date.now();
  const target = await startTarget(options.adapter, options.test);
  const h = createHarness(options.test, options.adapter);
  const inspector = createBroker(target.spec);
  try {
    const proxy = options.churn ? await proxyFor(h, target) : undefined;
    const spec = proxy === undefined ? target.spec : proxiedSpec(target.spec, proxy.port);
    const brokerOptions = healthCheckOptions(options.adapter);
    const params: ModeWorkerParams = {
      spec,
      brokerOptions,
      queue: PROCESS_QUEUE,
      concurrency: 8,
      prefetch: 8,
      leaseMs: TIMINGS.leaseMs,
      sampleEveryMs: cfg.sampleEveryMs,
    };
    const workers = await Promise.all([h.spawnWorker(params, MODE_WORKER_ENTRY), h.spawnWorker(params, MODE_WORKER_ENTRY)]);
    const producer = h.spawnProducer(
      {
        spec,
        brokerOptions,
        queue: PROCESS_QUEUE,
        keyPrefix: "s",
        count: Math.ceil((cfg.ratePerSec * durationMs) / 1000) + 1,
        durationMs,
        ratePerSec: cfg.ratePerSec,
        maxInFlight: 50,
        handlerMs: [5, 25],
        cpuFraction: 0,
        cpuMs: 0,
        seed: 7,
        sampleEveryMs: cfg.sampleEveryMs,
      },
      PRODUCER_ENTRY,
    );
    const t0 = Date.now();
    const physical = physicalQueues(PROCESS_QUEUE, inspector.capabilities).map((q) => q.name);
    const depths: { t: number; n: number }[] = [];
    let resets = 0;
    let nextDepth = t0;
    while (h.producersFinished === 0) {
      // The scenario's schedule: resets every 2 s (R7b); the depth every 10 s.
      await h.until(() => h.producersFinished > 0, options.churn ? cfg.churnResetEveryMs : 1_000, "the schedule").catch(() => {});
      if (proxy !== undefined && h.producersFinished === 0) {
        // Each process's sampler leaves the readings near a reset out of its handle count
        // (processes/sampler.ts): told before the reset, and again with its end once acknowledged.
        const from = Date.now();
        const notify = (notice: ResetNotice): void => {
          for (const p of [...workers, producer]) h.send(p, { ...notice });
        };
        notify({ type: "reset-notice", from, to: from });
        await proxy.resetConnections();
        notify({ type: "reset-notice", from, to: Date.now() });
        resets++;
      }
      if (Date.now() >= nextDepth) {
        nextDepth += cfg.sampleEveryMs;
        // Over every physical queue (brokers without native priorities keep one per level: SQS's
        // jobs are in `<queue>__p2`, and counting the logical name alone read 0 all along).
        const counts = await Promise.all(physical.map((q) => inspector.counts(q))).catch(() => undefined);
        if (counts !== undefined) depths.push({ t: Date.now() - t0, n: counts.reduce((n, c) => n + c.waiting + c.delayed, 0) });
      }
    }
    const lastFaultT = h.faults.at(-1)?.t ?? Date.now();
    const roles = new Map<number, string>([...workers.map((w) => [w.pid, "worker"] as const), [producer.pid, "producer"]]);
    // The workers connect through the proxy: it stays up (passing) until they are closed.
    const { drain, check, lines } = await drainAndCheck(h, target, lastFaultT);
    await proxy?.close();
    const samples = readLedgers(join(h.dir, "samples")).lines;
    const memory = memoryFigures(samples, t0 + warmUpMs, roles);
    const latencies = endToEnd(lines);
    const atOneMinute = depths.find((d) => d.t >= 60_000)?.n ?? depths.at(-1)?.n ?? 0;
    await sleep(0);
    return {
      check,
      drain,
      faults: h.faults.slice(0, 20),
      crashes: h.crashes.length,
      wallMs: Date.now() - started,
      dir: h.dir,
      memory,
      warmUpMs,
      durationMs,
      depth: { atOneMinute, atEnd: depths.at(-1)?.n ?? 0, max: Math.max(0, ...depths.map((d) => d.n)) },
      figures: {
        resets,
        latencyP50Ms: quantile(latencies, 0.5),
        latencyP99Ms: quantile(latencies, 0.99),
        reconnectedEvents: lines.filter((l) => l.kind === "reconnected").length,
        maxListenersWarnings: samples.filter((l) => l.kind === "warning" && l.name === "MaxListenersExceededWarning").length,
        warnings: samples.filter((l) => l.kind === "warning").length,
      },
    };
  } finally {
    await inspector.close().catch(() => {});
    await h.close();
    await target.stop();
  }
}

/** Intent (just before enqueue) → first start, sorted (ms). */
function endToEnd(lines: readonly LedgerLine[]): number[] {
  const accepted = new Map<string, number>();
  for (const l of lines) if (l.kind === "intent" && typeof l.id === "string") accepted.set(l.id, l.t);
  const first = new Map<string, number>();
  for (const l of lines) if (l.kind === "start" && typeof l.id === "string" && !first.has(l.id)) first.set(l.id, l.t);
  const out: number[] = [];
  for (const [id, t] of first) {
    const a = accepted.get(id);
    if (a !== undefined) out.push(t - a);
  }
  return out.sort((a, b) => a - b);
}
