/**
 * The process-level chaos scenarios, shared by their tests and negative controls:
 * R1 (kill -9 workers under load; R11-C2 is R1 with `ackBeforeHandle`) and R2 (broker crash and
 * graceful restart; R11-C1 is its crash variant on Redis without AOF). Each returns the checker's
 * report plus the scenario's own figures; the tests turn them into bars.
 */
import { execFileSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { waitForPort } from "@jobs/conformance";
import { type AdapterName, createBroker, type StoreTarget, startStoreTarget, startTarget, type Target } from "./adapters.js";
import { type CheckReport, check, type Fault, quantile, slowOrphans } from "./checker.js";
import { type ChaosConfig, config, type R2Run, TIMINGS } from "./config.js";
import { createHarness, type DrainResult, type Harness } from "./harness.js";
import type { LedgerLine } from "./ledger.js";
import type { WorkerParams } from "./processes/params.js";
import { prng, uniform } from "./random.js";

/** The quiet period and hard cap of the drain (RELIABILITY.md d.1). */
export const DRAIN: { readonly quietMs: number; readonly capMs: number } = {
  quietMs: 3 * TIMINGS.leaseMs,
  capMs: 60_000 + 3 * TIMINGS.leaseMs,
};

/** What a chaos scenario measured. */
export interface ScenarioResult {
  readonly check: CheckReport;
  readonly drain: DrainResult;
  readonly faults: readonly Fault[];
  readonly figures: Readonly<Record<string, unknown>>;
  readonly crashes: number;
  readonly wallMs: number;
  readonly dir: string;
}

/** A few ids of a list, for reports. */
export const sample = (ids: readonly unknown[], n = 20): unknown[] => ids.slice(0, n);

/** The queue of every chaos scenario. */
export const QUEUE = "chaos";

/** Waits for the drain (d.1), closes the workers, and runs the checker on the ledgers. */
export async function drainAndCheck(h: Harness, target: Target, lastFaultT: number): Promise<{ drain: DrainResult; check: CheckReport }> {
  const inspector = createBroker(target.spec);
  try {
    const drain = await h.drain({ broker: inspector, queue: QUEUE, quietMs: DRAIN.quietMs, capMs: DRAIN.capMs, lastFaultT });
    await h.closeWorkers();
    const read = h.read();
    return { drain, check: check({ lines: read.lines, faults: read.faults, truncatedLines: read.truncated }) };
  } finally {
    await inspector.close().catch(() => {});
  }
}

/** Options of `runR1`. */
export interface R1Options {
  readonly test: string;
  readonly adapter: AdapterName;
  readonly seed: number;
  /** R11-C2: workers ack before handling. */
  readonly wrap?: WorkerParams["wrap"];
  /** The orphan recovery bar (ms): orphans slower than it are explained in the figures (`slowOrphans`). */
  readonly recoveryLimitMs?: number;
  /** With the Redis store (issue 15): the broker's own Redis for the redis adapter, a private one (AOF always) for the others. */
  readonly store?: boolean;
  /** The run's parameters (default: the tier's `chaos.r1`). */
  readonly params?: ChaosConfig["r1"];
}

/**
 * R1: one producer enqueues the tier's jobs at full speed; three workers run them; from the first
 * start, every U(2, 5) s one random worker is SIGKILLed and respawned 0.5 s later, until 90 % of
 * the jobs completed; then the drain.
 */
export async function runR1(options: R1Options): Promise<ScenarioResult> {
  const cfg = options.params ?? config().chaos.r1;
  const rng = prng(options.seed);
  const started = Date.now();
  const target = await startTarget(options.adapter, options.test);
  let store: StoreTarget | undefined;
  const h = createHarness(options.test, options.adapter);
  try {
    if (options.store === true) store = await startStoreTarget(target);
    const storeSpec = store === undefined ? {} : { store: store.spec };
    const params: Omit<WorkerParams, "ledgerDir"> = {
      spec: target.spec,
      ...storeSpec,
      queue: QUEUE,
      concurrency: cfg.concurrency,
      prefetch: cfg.prefetch,
      leaseMs: TIMINGS.leaseMs,
      // Every delivery as it arrives: an orphan redelivered into a worker killed before it started it shows only there.
      recordReceives: true,
      ...(options.wrap === undefined ? {} : { wrap: options.wrap }),
    };
    await Promise.all(Array.from({ length: cfg.workers }, () => h.spawnWorker(params)));
    h.spawnProducer({
      spec: target.spec,
      ...storeSpec,
      queue: QUEUE,
      keyPrefix: "j",
      count: cfg.jobs,
      maxInFlight: cfg.producerInFlight,
      ratePerSec: cfg.producerRatePerSec,
      handlerMs: cfg.handlerMs,
      cpuFraction: cfg.cpuFraction,
      cpuMs: cfg.cpuMs,
      seed: (options.seed ^ 0x9e3779b9) >>> 0,
    });
    await h.until(() => h.firstStartAt !== undefined, 60_000, "the first start");
    const stopAt = Math.ceil(cfg.jobs * cfg.stopKillingAt);
    const enough = (): boolean => h.done.size >= stopAt;
    let kills = 0;
    const respawns: Promise<void>[] = [];
    let waitedForPoolMs = 0;
    while (!enough()) {
      const wait = uniform(rng, cfg.killEveryMs[0], cfg.killEveryMs[1]);
      // The schedule's pause (from the previous kill), cut short when the run reaches 90 %.
      await h.until(enough, wait, "the kill interval").catch(() => {});
      if (enough()) break;
      // Then a kill only once every worker consumes again: the scenario kills one of three consuming
      // workers. On a loaded machine a respawned process took 9-27 s to get ready, kills every 2-5 s
      // emptied the pool, and "orphan recovery" measured the wait for any worker at all. Where the
      // respawn is quicker than the interval (a quiet machine), this waits for nothing.
      const poolFrom = Date.now();
      await h.until(() => enough() || h.readyWorkers().length >= cfg.workers, 120_000, "the respawned workers").catch(() => {});
      waitedForPoolMs += Date.now() - poolFrom;
      if (enough()) break;
      // A random worker among those consuming (one still starting up holds no job yet).
      const live = h.readyWorkers();
      const victim = live[Math.floor(rng() * live.length)];
      if (victim === undefined) continue;
      await h.kill(victim);
      kills++;
      // Respawn 0.5 s later without holding up the schedule (a fresh process takes a while to start).
      respawns.push(
        sleep(cfg.respawnMs)
          .then(() => h.spawnWorker(params))
          .then((fresh) => {
            h.fault("spawn", { pid: fresh.pid });
          }),
      );
    }
    await Promise.all(respawns);
    const lastFaultT = h.faults.filter((f) => f.kind === "kill").at(-1)?.t ?? Date.now();
    await h.until(() => h.producersFinished === 1, 120_000, "the producer to finish");
    const { drain, check: report } = await drainAndCheck(h, target, lastFaultT);
    const firstStart = h.firstStartAt ?? started;
    const throughput = report.completed / Math.max(0.001, (lastFaultT - firstStart) / 1000);
    const recovery = report.orphanRecoveryMs;
    // Every job in flight at a kill is one orphan (re-orphaned ones give two recovery samples).
    const orphans = report.kills.reduce((s, k) => s + k.inFlight, 0);
    const slow = options.recoveryLimitMs === undefined ? [] : slowOrphans(h.read().lines, h.faults, options.recoveryLimitMs);
    const slowBy = (cause: string): number => slow.filter((o) => o.cause === cause).length;
    const killTimes = h.faults.filter((f) => f.kind === "kill").map((f) => f.t);
    const spawnTimes = h.faults.filter((f) => f.kind === "spawn").map((f) => f.t);
    const respawnReady = killTimes
      .flatMap((t, i) => (spawnTimes[i] === undefined ? [] : [(spawnTimes[i] as number) - t]))
      .sort((a, b) => a - b);
    return {
      check: report,
      drain,
      faults: h.faults,
      crashes: h.crashes.length,
      wallMs: Date.now() - started,
      dir: h.dir,
      figures: {
        kills,
        inFlightAtKills: report.kills.map((k) => k.inFlight),
        sumInFlightAtKills: orphans,
        // Kill → its replacement ready (the spawn fault is written once the new worker consumes).
        respawnReadyP50Ms: quantile(respawnReady, 0.5),
        respawnReadyMaxMs: respawnReady.at(-1) ?? 0,
        waitedForPoolMs,
        orphans,
        orphanRecoveryP50Ms: quantile(recovery, 0.5),
        orphanRecoveryP99Ms: quantile(recovery, 0.99),
        orphanRecoveryMaxMs: recovery.at(-1) ?? 0,
        // Orphans a second kill took again on their way back: two samples above, one per orphaning.
        reorphaned: report.reorphaned,
        // Orphans whose next start came after the bar and where they were: received by a worker killed
        // before starting them, delivered to one killed before it recorded the delivery, first
        // received again only after the bar, or received in time and started late.
        slowOrphans: slow.length,
        slowOrphansKilledBuffer: slowBy("killed-buffer"),
        slowOrphansUnseenDelivery: slowBy("unseen-delivery"),
        slowOrphansLateDelivery: slowBy("late-delivery"),
        slowOrphansHeld: slowBy("held"),
        slowOrphansSample: slow.slice(0, 10),
        duplicatesPerKill: kills === 0 ? 0 : report.explainedDuplicates / kills,
        throughputPerSec: Math.round(throughput),
        store: store === undefined ? "none" : store.server === undefined ? "redis (the broker's server)" : "redis (private, AOF always)",
      },
    };
  } finally {
    await h.close();
    await store?.stop();
    await target.stop();
  }
}

/** Options of `runR2`. */
export interface R2Options {
  readonly test: string;
  readonly adapter: "redis" | "rabbitmq" | "nats";
  readonly run: R2Run;
  /** Redis: append-only file (default true); false is R11-C1. */
  readonly redisAof?: boolean;
  /** With the Redis store (issue 15), as in `R1Options.store`: on the redis adapter it goes down with the broker. */
  readonly store?: boolean;
}

/** One outage as it happened. */
export interface Outage {
  readonly kind: string;
  readonly downAt: number;
  readonly readyAt: number;
  /** Broker ready → first fulfilled enqueue, ms (-1: none). */
  readonly producerReconnectMs: number;
  /** Broker ready → first start, per worker pid; the max over workers (-1: a worker never started again). */
  readonly workerReconnectMs: number;
  /** Completions per second in the 5 s before the outage and in [ready + 5 s, ready + 10 s). */
  readonly throughputBefore: number;
  readonly throughputAfter: number;
}

function rabbitCtl(target: Target): (...args: string[]) => string {
  const ctl = (target.server as { ctl?: (...args: string[]) => string } | undefined)?.ctl;
  if (ctl === undefined) throw new Error("[reliability] the RabbitMQ target has no rabbitmqctl");
  return ctl;
}

/** Takes the broker down the way `kind` says and returns a function that brings it back. */
async function takeDown(target: Target, kind: R2Run["faults"][number]["kind"]): Promise<() => Promise<void>> {
  const server = target.server;
  if (server === undefined) throw new Error("[reliability] R2 needs an out-of-process broker");
  const adapter = target.spec.adapter;
  if (kind === "crash") {
    await server.kill("SIGKILL");
    return () => server.start();
  }
  if (adapter === "redis") {
    // redis-cli returns once the server has closed the connection, i.e. after its shutdown ran.
    try {
      execFileSync("redis-cli", ["-p", String(server.port), "shutdown", ...(kind === "graceful-nosave" ? ["nosave"] : [])], {
        timeout: 30_000,
        stdio: "ignore",
      });
    } catch {
      // "Server closed the connection" exits non-zero on some redis-cli versions
    }
    await server.kill("SIGKILL");
    return () => server.start();
  }
  if (adapter === "rabbitmq") {
    const ctl = rabbitCtl(target);
    ctl("stop_app");
    return async () => {
      ctl("start_app");
      await waitForPort("127.0.0.1", server.port, 60_000);
    };
  }
  // NATS: SIGTERM is its graceful stop.
  await server.kill("SIGTERM");
  return () => server.start();
}

function firstAfter(lines: readonly LedgerLine[], kind: string, t: number, pid?: number): number | undefined {
  let best: number | undefined;
  for (const l of lines)
    if (l.kind === kind && l.t >= t && (pid === undefined || l.pid === pid) && (best === undefined || l.t < best)) best = l.t;
  return best;
}

function rate(lines: readonly LedgerLine[], from: number, to: number): number {
  if (to - from < 2_000) return Number.NaN;
  let n = 0;
  for (const l of lines) if (l.kind === "done" && l.t >= from && l.t < to) n++;
  return n / ((to - from) / 1000);
}

/**
 * R2: a producer at a steady 200 enqueues/s (≤ 50 pending) and two workers run for the run's
 * length; at each scheduled time the broker goes down (kill -9, or its graceful stop) and comes
 * back with the same data after the outage; then the drain.
 */
export async function runR2(options: R2Options): Promise<ScenarioResult & { readonly outages: readonly Outage[] }> {
  const cfg = config().chaos.r2;
  const started = Date.now();
  const target = await startTarget(options.adapter, options.test, { redisAof: options.redisAof ?? true });
  let store: StoreTarget | undefined;
  const h = createHarness(options.test, options.adapter);
  try {
    if (options.store === true) store = await startStoreTarget(target);
    const storeSpec = store === undefined ? {} : { store: store.spec };
    const params: Omit<WorkerParams, "ledgerDir"> = {
      spec: target.spec,
      ...storeSpec,
      queue: QUEUE,
      concurrency: cfg.concurrency,
      prefetch: cfg.concurrency,
      leaseMs: TIMINGS.leaseMs,
    };
    await Promise.all(Array.from({ length: cfg.workers }, () => h.spawnWorker(params)));
    const workerPids = h.workers().map((w) => w.pid);
    h.spawnProducer({
      spec: target.spec,
      ...storeSpec,
      queue: QUEUE,
      keyPrefix: "j",
      count: Math.ceil((cfg.ratePerSec * options.run.durationMs) / 1000) + 1,
      durationMs: options.run.durationMs,
      ratePerSec: cfg.ratePerSec,
      maxInFlight: cfg.maxInFlight,
      handlerMs: cfg.handlerMs,
      cpuFraction: 0,
      cpuMs: 0,
      seed: 2,
    });
    // Outages count from the producer's first accepted enqueue (a process can take seconds to start
    // on a busy machine; the throughput before the first outage must be measured on a running producer).
    await h.until(() => h.accepted.size > 0, 60_000, "the producer's first accepted enqueue");
    const t0 = Date.now();
    const windows: { kind: string; downAt: number; readyAt: number }[] = [];
    for (const f of [...options.run.faults].sort((a, b) => a.atMs - b.atMs)) {
      const due = t0 + f.atMs - Date.now();
      if (due > 0) await sleep(due);
      const downAt = Date.now();
      const bringBack = await takeDown(target, f.kind);
      const rest = downAt + f.outageMs - Date.now();
      if (rest > 0) await sleep(rest);
      await bringBack();
      const readyAt = Date.now();
      windows.push({ kind: f.kind, downAt, readyAt });
      h.fault(`broker-${f.kind}`, { t: downAt, until: readyAt, broker: options.adapter, mode: f.kind });
    }
    const lastFaultT = h.faults.at(-1)?.until ?? Date.now();
    await h.until(() => h.producersFinished === 1, options.run.durationMs + 60_000, "the producer to finish");
    const { drain, check: report } = await drainAndCheck(h, target, lastFaultT);
    const lines = h.read().lines;
    const outages: Outage[] = windows.map((w, i) => {
      const accepted = firstAfter(lines, "accepted", w.readyAt);
      const perWorker = workerPids.map((pid) => firstAfter(lines, "start", w.readyAt, pid));
      const next = windows[i + 1]?.downAt ?? Number.POSITIVE_INFINITY;
      return {
        kind: w.kind,
        downAt: w.downAt - t0,
        readyAt: w.readyAt - t0,
        producerReconnectMs: accepted === undefined ? -1 : accepted - w.readyAt,
        workerReconnectMs: perWorker.some((t) => t === undefined) ? -1 : Math.max(...perWorker.map((t) => (t as number) - w.readyAt)),
        throughputBefore: rate(lines, w.downAt - 5_000, w.downAt),
        throughputAfter: rate(lines, w.readyAt + 5_000, Math.min(w.readyAt + 10_000, next)),
      };
    });
    return {
      check: report,
      drain,
      faults: h.faults,
      crashes: h.crashes.length,
      wallMs: Date.now() - started,
      dir: h.dir,
      outages,
      figures: {
        run: options.run.name,
        outages,
        disconnectedEvents: lines.filter((l) => l.kind === "disconnected").length,
        reconnectedEvents: lines.filter((l) => l.kind === "reconnected").length,
        brokerErrors: lines.filter((l) => l.kind === "broker-error" || l.kind === "worker-error").length,
        rejectedCodes: countBy(lines.filter((l) => l.kind === "rejected").map((l) => String(l.code))),
        store: store === undefined ? "none" : store.server === undefined ? "redis (the broker's server)" : "redis (private, AOF always)",
        storeErrors: lines.filter((l) => l.kind === "store-error").length,
      },
    };
  } finally {
    await h.close();
    await store?.stop();
    await target.stop();
  }
}

function countBy(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
