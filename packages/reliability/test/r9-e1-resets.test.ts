/**
 * R9-E1 — enqueue outcomes under connection resets (RELIABILITY.md d.3): the producer's connection
 * goes through a proxy that resets it every 500 ms. Every outcome must be classified (accepted,
 * definite, ambiguous), every accepted job must complete, no definitely rejected job may run, and
 * the ambiguous ones that ran anyway are reported as recovered.
 */
import { describe, expect, it } from "vitest";
import { selectedAdapters } from "../src/adapters.js";
import { config, TIMINGS } from "../src/config.js";
import { runE1 } from "../src/enqueue-scenarios.js";
import { sample } from "../src/harness-scenarios.js";
import { skipCase } from "../src/in-process.js";
import { bar, writeReport } from "../src/report.js";

for (const adapter of selectedAdapters()) {
  if (adapter === "memory") {
    skipCase("R9-E1", adapter, "capability outOfProcess absent (no connection to reset)");
    continue;
  }
  describe(`R9-E1 enqueue under resets [${adapter}]`, () => {
    it(`classifies every outcome and loses no accepted job (tier ${config().tier})`, async () => {
      const r = await runE1({ test: "R9-E1", adapter });
      const c = r.check;
      const pendingLimit = TIMINGS.enqueueTimeoutMs + 1_000;
      const classified = c.accepted + c.definite + c.ambiguous;
      const report = writeReport({
        test: "R9-E1",
        adapter,
        seed: 0,
        config: {
          jobs: config().processLevel.r9.e1Jobs,
          resetEveryMs: config().processLevel.r9.e1ResetEveryMs,
          timings: TIMINGS,
          ledgers: r.dir,
        },
        figures: {
          ...r.figures,
          attempted: c.attempted,
          accepted: c.accepted,
          definite: c.definite,
          ambiguous: c.ambiguous,
          recovered: c.recovered.length,
          completed: c.completed,
          lostSample: sample(c.lost),
          duplicatesExplained: c.explainedDuplicates,
          unexplainedSample: sample(c.unexplained),
          longestPendingMs: c.maxPendingMs,
          drainMs: r.drain.drainMs,
          wallMs: r.wallMs,
        },
        bars: [
          bar("outcomes classified", `${classified}/${c.attempted}`, "all", classified === c.attempted && c.unresolved.length === 0),
          bar("lost accepted", c.lost.length, "= 0", c.lost.length === 0),
          bar("phantom", c.phantom.length, "= 0", c.phantom.length === 0),
          bar("definite rejections that ran", c.definiteCompleted.length, "= 0", c.definiteCompleted.length === 0),
          bar("duplicates unexplained", c.unexplained.length, "= 0", c.unexplained.length === 0),
          bar("unexpected dead letters", c.unexpectedDead.length, "= 0", c.unexpectedDead.length === 0),
          bar("longest pending enqueue ms", c.maxPendingMs, `≤ ${pendingLimit}`, c.maxPendingMs <= pendingLimit),
          bar("drained within cap", r.drain.drained, "counts 0 and quiet 3 × lease", r.drain.drained),
        ],
        faults: r.faults.slice(0, 50),
      });
      console.log(
        `[R9-E1 ${adapter}] ${report.verdict}: ${JSON.stringify(report.bars.map((b) => `${b.name}=${String(b.value)}`))} ${JSON.stringify(r.figures)}`,
      );
      expect(report.verdict).toBe("pass");
    });
  });
}
