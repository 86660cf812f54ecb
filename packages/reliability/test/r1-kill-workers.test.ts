/**
 * R1 — kill -9 workers mid-job under load (RELIABILITY.md d.3). Worker processes die at arbitrary
 * points; nothing accepted may be lost, every duplicate must be explained by a kill, and orphans
 * must come back within the broker's bound.
 */
import { afterEach, describe, expect, it } from "vitest";
import { selectedAdapters } from "../src/adapters.js";
import { config, TIMINGS } from "../src/config.js";
import { closeAllHarnesses } from "../src/harness.js";
import { runR1, sample } from "../src/harness-scenarios.js";
import { runSeed } from "../src/random.js";
import { bar, writeReport } from "../src/report.js";

// No child process outlives a test, even one that timed out.
afterEach(closeAllHarnesses);

/** Orphan recovery p99 bound per broker (R1 pass bar). */
const RECOVERY_LIMIT_MS: Record<string, number> = {
  // lease + reaper interval + 2 s
  redis: TIMINGS.leaseMs + 1_000 + 2_000,
  nats: TIMINGS.leaseMs + 1_000 + 2_000,
  // visibility + poll wait + 1 s ≤ 8 s
  sqs: 8_000,
  // a closed connection requeues at once
  rabbitmq: 2_000,
};

for (const adapter of selectedAdapters()) {
  if (adapter === "memory") {
    const reason = "capability outOfProcess absent (the memory broker lives in one process)";
    writeReport({ test: "R1", adapter, seed: 0, figures: {}, bars: [], verdict: "skip", reason });
    it.skip(`R1 [memory] skipped: ${reason}`, () => {});
    continue;
  }
  describe(`R1 kill -9 workers [${adapter}]`, () => {
    it(`loses nothing and explains every duplicate (tier ${config().tier})`, async () => {
      const cfg = config().chaos.r1;
      const seed = runSeed();
      console.log(`[R1 ${adapter}] seed=${seed} (replay with JOBS_RELIABILITY_SEED=${seed})`);
      const limit = RECOVERY_LIMIT_MS[adapter] as number;
      const r = await runR1({ test: "R1", adapter, seed, recoveryLimitMs: limit });
      const c = r.check;
      const f = r.figures as { kills: number; sumInFlightAtKills: number; orphanRecoveryP99Ms: number };
      const report = writeReport({
        test: "R1",
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
          bar("unexpected dead letters", c.unexpectedDead.length, "= 0", c.unexpectedDead.length === 0),
          bar("kills", f.kills, `≥ ${cfg.minKills}`, f.kills >= cfg.minKills),
          bar("orphan recovery p99 ms", f.orphanRecoveryP99Ms, `≤ ${limit}`, f.orphanRecoveryP99Ms <= limit),
          bar("drained within cap", r.drain.drained, `counts 0 and quiet ${TIMINGS.leaseMs * 3} ms before the cap`, r.drain.drained),
        ],
        faults: r.faults,
      });
      console.log(`[R1 ${adapter}] ${report.verdict}: ${JSON.stringify(report.bars.map((b) => `${b.name}=${String(b.value)}`))}`);
      expect(report.bars.filter((b) => !b.ok)).toEqual([]);
    });
  });
}
