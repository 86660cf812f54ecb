/**
 * R1's and R2's figures and bars, shared by their runs without a store (r1-kill-workers,
 * r2-broker-restart) and with one (r13-store-chaos): the same bars, plus, with a store, the bar on
 * `finishedThenRunAgain` (issue 15). Without a store that figure is reported, not judged.
 */
import type { AdapterName } from "./adapters.js";
import { type ChaosConfig, TIMINGS } from "./config.js";
import type { Outage, ScenarioResult } from "./harness-scenarios.js";
import { sample } from "./harness-scenarios.js";
import { type Bar, bar, type Report, writeReport } from "./report.js";

/** Orphan recovery p99 bound per broker (R1 pass bar). */
export const RECOVERY_LIMIT_MS: Readonly<Record<string, number>> = {
  // lease + reaper interval + 2 s
  redis: TIMINGS.leaseMs + 1_000 + 2_000,
  nats: TIMINGS.leaseMs + 1_000 + 2_000,
  // visibility + poll wait + 1 s ≤ 8 s
  sqs: 8_000,
  // a closed connection requeues at once
  rabbitmq: 2_000,
};

/**
 * With a store, an orphan also waits for the dead worker's claim: its redelivery meets the claim
 * still live in the store (its time to live is the lease, renewed by the same heartbeat as the
 * broker's lease) and is deferred until it runs out (STATE.md, claim before run). RabbitMQ's
 * immediate requeue therefore gives the lease + 2 s; the other brokers' bounds already exceed it.
 */
export function recoveryLimitMs(adapter: string, withStore: boolean): number {
  const broker = RECOVERY_LIMIT_MS[adapter] as number;
  return withStore ? Math.max(broker, TIMINGS.leaseMs + 2_000) : broker;
}

/** Reconnect bound after the broker is ready: backoff cap (1 s) + 3 s; RabbitMQ's quorum queues elect a leader first: 10 s. */
export const RECONNECT_LIMIT_MS: Readonly<Record<"redis" | "rabbitmq" | "nats", number>> = {
  redis: TIMINGS.maxReconnectDelayMs + 3_000,
  nats: TIMINGS.maxReconnectDelayMs + 3_000,
  rabbitmq: 10_000,
};

/** The `finishedThenRunAgain` bar: 0 with a store; none without. */
function finishedBars(r: ScenarioResult, withStore: boolean): Bar[] {
  const n = r.check.finishedThenRunAgain;
  return withStore ? [bar("finished then run again", n, "= 0 (with a store)", n === 0)] : [];
}

/** Writes R1's report (test id `test`) and returns it. */
export function reportR1(args: {
  readonly test: string;
  readonly adapter: AdapterName;
  readonly seed: number;
  readonly cfg: ChaosConfig["r1"];
  readonly r: ScenarioResult;
  readonly withStore: boolean;
}): Report {
  const { test, adapter, seed, cfg, r, withStore } = args;
  const c = r.check;
  const f = r.figures as { kills: number; sumInFlightAtKills: number; orphanRecoveryP99Ms: number };
  const limit = recoveryLimitMs(adapter, withStore);
  return writeReport({
    test,
    adapter,
    seed,
    config: { ...cfg, timings: TIMINGS, ledgers: r.dir },
    figures: {
      ...r.figures,
      attempted: c.attempted,
      accepted: c.accepted,
      definite: c.definite,
      ambiguous: c.ambiguous,
      completed: c.completed,
      lost: c.lost.length,
      lostSample: sample(c.lost),
      phantom: c.phantom.length,
      recovered: c.recovered.length,
      duplicatesExplained: c.explainedDuplicates,
      duplicatesUnexplained: c.unexplained.length,
      redeliveredAfterAck: c.redeliveredAfterAck,
      finishedThenRunAgain: c.finishedThenRunAgain,
      finishedThenRunAgainSample: c.finishedThenRunAgainSample,
      unexplainedSample: sample(c.unexplained),
      maxStarts: c.maxStarts,
      orphansNotRestarted: c.orphansNotRestarted,
      deadLettered: c.deadLettered,
      workerCrashes: r.crashes,
      truncatedLines: c.truncatedLines,
      drainMs: r.drain.drainMs,
      drainWaitedMs: r.drain.waitedMs,
      wallMs: r.wallMs,
    },
    bars: [
      bar("lost", c.lost.length, "= 0", c.lost.length === 0),
      bar("phantom", c.phantom.length, "= 0", c.phantom.length === 0),
      bar("duplicates unexplained", c.unexplained.length, "= 0", c.unexplained.length === 0),
      bar(
        "duplicates explained",
        c.explainedDuplicates,
        `≤ Σ in-flight at kills (${f.sumInFlightAtKills})`,
        c.explainedDuplicates <= f.sumInFlightAtKills,
      ),
      ...finishedBars(r, withStore),
      bar("unexpected dead letters", c.unexpectedDead.length, "= 0", c.unexpectedDead.length === 0),
      bar("kills", f.kills, `≥ ${cfg.minKills}`, f.kills >= cfg.minKills),
      bar("orphan recovery p99 ms", f.orphanRecoveryP99Ms, `≤ ${limit}`, f.orphanRecoveryP99Ms <= limit),
      bar("drained within cap", r.drain.drained, `counts 0 and quiet ${TIMINGS.leaseMs * 3} ms before the cap`, r.drain.drained),
    ],
    faults: r.faults,
  });
}

/** Writes R2's report (test id `test`) and returns it. */
export function reportR2(args: {
  readonly test: string;
  readonly adapter: "redis" | "rabbitmq" | "nats";
  readonly cfg: ChaosConfig["r2"];
  readonly run: unknown;
  readonly r: ScenarioResult & { readonly outages: readonly Outage[] };
  readonly withStore: boolean;
}): Report {
  const { test, adapter, cfg, run, r, withStore } = args;
  const c = r.check;
  const limit = RECONNECT_LIMIT_MS[adapter];
  const producerMs = r.outages.map((o) => o.producerReconnectMs);
  const workerMs = r.outages.map((o) => o.workerReconnectMs);
  const within = (ms: number): boolean => ms >= 0 && ms <= limit;
  const throughputOk = r.outages.every((o) => Number.isNaN(o.throughputAfter) || o.throughputAfter >= 0.8 * o.throughputBefore);
  const pendingLimit = TIMINGS.enqueueTimeoutMs + 1_000;
  return writeReport({
    test,
    adapter,
    seed: 0,
    config: { ...cfg, run, timings: TIMINGS, ledgers: r.dir },
    figures: {
      ...r.figures,
      attempted: c.attempted,
      accepted: c.accepted,
      definite: c.definite,
      ambiguous: c.ambiguous,
      completed: c.completed,
      lostAccepted: c.lost.length,
      lostSample: sample(c.lost),
      phantom: c.phantom.length,
      recovered: c.recovered.length,
      definiteCompleted: c.definiteCompleted.length,
      duplicatesExplained: c.explainedDuplicates,
      duplicatesUnexplained: c.unexplained.length,
      redeliveredAfterAck: c.redeliveredAfterAck,
      finishedThenRunAgain: c.finishedThenRunAgain,
      finishedThenRunAgainSample: c.finishedThenRunAgainSample,
      unexplainedSample: sample(c.unexplained),
      longestPendingMs: c.maxPendingMs,
      unresolvedEnqueues: c.unresolved.length,
      deadLettered: c.deadLettered,
      workerCrashes: r.crashes,
      truncatedLines: c.truncatedLines,
      drainMs: r.drain.drainMs,
      drainWaitedMs: r.drain.waitedMs,
      wallMs: r.wallMs,
    },
    bars: [
      bar("lost accepted", c.lost.length, "= 0", c.lost.length === 0),
      bar("phantom", c.phantom.length, "= 0", c.phantom.length === 0),
      bar("producer reconnect ms", producerMs.join(","), `each ≤ ${limit} after ready`, producerMs.every(within)),
      bar("worker reconnect ms", workerMs.join(","), `each ≤ ${limit} after ready (every worker)`, workerMs.every(within)),
      bar("longest pending enqueue ms", c.maxPendingMs, `≤ ${pendingLimit}`, c.maxPendingMs <= pendingLimit),
      bar("unresolved enqueues", c.unresolved.length, "= 0", c.unresolved.length === 0),
      bar(
        "throughput 5-10 s after ready / before",
        r.outages.map((o) => (o.throughputAfter / o.throughputBefore).toFixed(2)).join(","),
        "≥ 0.80",
        throughputOk,
      ),
      bar("worker crashes", r.crashes, "= 0", r.crashes === 0),
      bar("duplicates unexplained", c.unexplained.length, "= 0", c.unexplained.length === 0),
      ...finishedBars(r, withStore),
      bar("unexpected dead letters", c.unexpectedDead.length, "= 0", c.unexpectedDead.length === 0),
      bar("drained within cap", r.drain.drained, `counts 0 and quiet ${TIMINGS.leaseMs * 3} ms before the cap`, r.drain.drained),
    ],
    faults: r.faults,
  });
}
