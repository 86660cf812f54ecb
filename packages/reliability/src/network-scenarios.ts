/**
 * Network-fault scenarios through the fault proxy process (RELIABILITY.md R3, R9-E1, R9-E4, R7b):
 * producer and workers connect to the broker through a proxy the orchestrator drives; the checker
 * reads their ledgers afterwards, and the figures (detection, recovery, longest pending) come
 * from the same ledgers and the proxy's fault windows.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { type AdapterName, type BrokerSpec, createBroker, startTarget, type Target } from "./adapters.js";
import { type CheckReport, check } from "./checker.js";
import { config, type R3Run, TIMINGS } from "./config.js";
import { createHarness, type DrainResult, type Harness } from "./harness.js";
import { DRAIN, type ScenarioResult } from "./harness-scenarios.js";
import type { LedgerLine } from "./ledger.js";
import type { WorkerParams } from "./processes/params.js";
import { type ProxyProcess, startProxy } from "./proxy.js";

/** The queue every process-level scenario uses. */
export const PROCESS_QUEUE = "chaos";

/** The spec of `target` with its URL pointing at `port` on loopback (the proxy in front of it). */
export function proxiedSpec(spec: BrokerSpec, port: number): BrokerSpec {
  const url = new URL(spec.url);
  url.hostname = "127.0.0.1";
  url.port = String(port);
  // URL keeps a trailing "/" on http URLs only when there was one: keep the original shape.
  const text = spec.url.endsWith("/") ? url.href : url.href.replace(/\/$/, "");
  return { ...spec, url: text };
}

/**
 * Adapter options of processes behind the proxy: the suite's health check (ping every 1 s, 2 s
 * timeout; d.1) where the suite's defaults leave the adapter's own. SQS has no ping: its request
 * timeout is its health check. nats.js pings every `pingInterval` and drops the connection when
 * more than `maxPingOut` are unanswered at a tick (the adapter's default: 2 s × 2).
 */
export function healthCheckOptions(adapter: AdapterName): Readonly<Record<string, unknown>> {
  if (adapter === "sqs") return { requestTimeout: TIMINGS.pingTimeoutMs };
  if (adapter === "nats") return { connectionOptions: { pingInterval: TIMINGS.pingIntervalMs, maxPingOut: 1 } };
  return {};
}

/** Starts a proxy process in front of the target's server. */
export function proxyFor(h: Harness, target: Target): Promise<ProxyProcess> {
  if (target.server === undefined) throw new Error("[reliability] a proxied scenario needs an out-of-process broker");
  return startProxy(h, { host: "127.0.0.1", port: target.server.port }, { broker: target.spec.adapter });
}

/** Drains through a direct connection, closes the workers, and checks the ledgers. */
export async function drainAndCheck(
  h: Harness,
  target: Target,
  lastFaultT: number,
  expectedDead?: ReadonlySet<string>,
): Promise<{ drain: DrainResult; check: CheckReport; lines: readonly LedgerLine[] }> {
  const inspector = createBroker(target.spec);
  try {
    const drain = await h.drain({ broker: inspector, queue: PROCESS_QUEUE, quietMs: DRAIN.quietMs, capMs: DRAIN.capMs, lastFaultT });
    await h.closeWorkers();
    const read = h.read();
    return {
      drain,
      lines: read.lines,
      check: check({ lines: read.lines, faults: read.faults, truncatedLines: read.truncated, ...(expectedDead ? { expectedDead } : {}) }),
    };
  } finally {
    await inspector.close().catch(() => {});
  }
}

/** First line of `kind` at or after `t` (of `pid` if given), ms since the epoch. */
export function firstAfter(lines: readonly LedgerLine[], kind: string, t: number, pid?: number): number | undefined {
  let best: number | undefined;
  for (const l of lines)
    if (l.kind === kind && l.t >= t && (pid === undefined || l.pid === pid) && (best === undefined || l.t < best)) best = l.t;
  return best;
}

/** One fault window of an R3 run as it happened, with what each process noticed. */
export interface R3Window {
  readonly kind: string;
  /** Fault start and heal, ms from the run's start. */
  readonly at: number;
  readonly healedAt: number;
  /** Fault → first `disconnected` line, per process pid (-1: none before the heal + 5 s). */
  readonly detectionMs: Readonly<Record<string, number>>;
  /** Heal → first accepted enqueue (-1: none). */
  readonly producerRecoveryMs: number;
  /** Heal → first start, max over the workers (-1: a worker never started again). */
  readonly workerRecoveryMs: number;
}

/** Runs one step of an R3 schedule on the proxy; resolves when it healed. */
async function runStep(proxy: ProxyProcess, step: R3Run["steps"][number]): Promise<void> {
  switch (step.kind) {
    case "reset":
      await proxy.resetConnections();
      return;
    case "latency":
      await proxy.latency(step.ms, step.jitterMs);
      await sleep(step.forMs);
      await proxy.latency(0, 0);
      return;
    case "refuse":
      await proxy.refuse();
      await sleep(step.forMs);
      await proxy.pass();
      return;
    default:
      if (step.kind === "pause") await proxy.pause();
      else await proxy.pauseOneWay("downstream");
      await sleep(step.forMs);
      if (step.endWith === "reset") await proxy.reset();
      await proxy.pass();
  }
}

/**
 * R3: a producer at 200 enqueues/s (≤ 50 pending) and two workers, all through one proxy, for the
 * run's length; the proxy applies the run's schedule; then the drain (through a direct connection).
 */
export async function runR3(options: {
  readonly test: string;
  readonly adapter: AdapterName;
  readonly run: R3Run;
}): Promise<ScenarioResult & { readonly windows: readonly R3Window[]; readonly lines: readonly LedgerLine[] }> {
  const cfg = config().processLevel.r3;
  const started = Date.now();
  const target = await startTarget(options.adapter, options.test);
  const h = createHarness(options.test, options.adapter);
  try {
    const proxy = await proxyFor(h, target);
    const spec = proxiedSpec(target.spec, proxy.port);
    const brokerOptions = healthCheckOptions(options.adapter);
    const params: Omit<WorkerParams, "ledgerDir"> = {
      spec,
      brokerOptions,
      queue: PROCESS_QUEUE,
      concurrency: cfg.concurrency,
      prefetch: cfg.concurrency,
      leaseMs: TIMINGS.leaseMs,
    };
    await Promise.all(Array.from({ length: cfg.workers }, () => h.spawnWorker(params)));
    const producer = h.spawnProducer({
      spec,
      brokerOptions,
      queue: PROCESS_QUEUE,
      keyPrefix: "j",
      count: Math.ceil((cfg.ratePerSec * options.run.durationMs) / 1000) + 1,
      durationMs: options.run.durationMs,
      ratePerSec: cfg.ratePerSec,
      maxInFlight: cfg.maxInFlight,
      handlerMs: cfg.handlerMs,
      cpuFraction: 0,
      cpuMs: 0,
      seed: 3,
    });
    // The schedule counts from the producer's first accepted enqueue, not from its fork: on a busy
    // machine a process can take many seconds to start, and a fault that hits before it has
    // connected tests nothing (R3-N5 once paused a producer's handshake, which then had no
    // connection to lose and reported no `disconnected`).
    await h.until(() => h.accepted.size > 0, 60_000, "the producer's first accepted enqueue");
    const t0 = Date.now();
    const healed: { kind: string; at: number; healedAt: number }[] = [];
    for (const step of [...options.run.steps].sort((a, b) => a.atMs - b.atMs)) {
      const due = t0 + step.atMs - Date.now();
      if (due > 0) await sleep(due);
      const at = Date.now();
      await runStep(proxy, step);
      healed.push({ kind: step.kind + ("endWith" in step && step.endWith ? `+${step.endWith}` : ""), at, healedAt: Date.now() });
    }
    const lastFaultT = Math.max(...healed.map((w) => w.healedAt), t0);
    await h.until(() => h.producersFinished === 1, options.run.durationMs + 60_000, "the producer to finish");
    const workerPids = h.workers().map((w) => w.pid);
    const { drain, check: report, lines } = await drainAndCheck(h, target, lastFaultT);
    const pids = [...workerPids, producer.pid];
    const windows: R3Window[] = healed.map((w) => {
      const detectionMs: Record<string, number> = {};
      for (const pid of pids) {
        const d = firstAfter(lines, "disconnected", w.at, pid);
        detectionMs[String(pid)] = d === undefined || d > w.healedAt + 5_000 ? -1 : d - w.at;
      }
      const accepted = firstAfter(lines, "accepted", w.healedAt);
      const perWorker = workerPids.map((pid) => firstAfter(lines, "start", w.healedAt, pid));
      return {
        kind: w.kind,
        at: w.at - t0,
        healedAt: w.healedAt - t0,
        detectionMs,
        producerRecoveryMs: accepted === undefined ? -1 : accepted - w.healedAt,
        workerRecoveryMs: perWorker.some((t) => t === undefined) ? -1 : Math.max(...perWorker.map((t) => (t as number) - w.healedAt)),
      };
    });
    await proxy.close();
    return {
      check: report,
      drain,
      faults: h.faults,
      crashes: h.crashes.length,
      wallMs: Date.now() - started,
      dir: h.dir,
      windows,
      lines,
      figures: {
        run: options.run.name,
        windows,
        disconnectedEvents: lines.filter((l) => l.kind === "disconnected").length,
        reconnectedEvents: lines.filter((l) => l.kind === "reconnected").length,
        leaseLost: lines.filter((l) => l.kind === "lease-lost").length,
        brokerErrors: countBy(
          lines.filter((l) => l.kind === "broker-error" || l.kind === "worker-error").map((l) => String(l.error).slice(0, 80)),
        ),
        rejectedCodes: countBy(lines.filter((l) => l.kind === "rejected").map((l) => String(l.code))),
      },
    };
  } finally {
    await h.close();
    await target.stop();
  }
}

/** Counts of each distinct value. */
export function countBy(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
