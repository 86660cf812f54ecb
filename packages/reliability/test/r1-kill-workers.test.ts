/**
 * R1 — kill -9 workers mid-job under load (RELIABILITY.md d.3). Worker processes die at arbitrary
 * points; nothing accepted may be lost, every duplicate must be explained by a kill, and orphans
 * must come back within the broker's bound. The same run with a job store is in r13-store-chaos.
 */
import { afterEach, describe, expect, it } from "vitest";
import { selectedAdapters } from "../src/adapters.js";
import { RECOVERY_LIMIT_MS, reportR1 } from "../src/chaos-reports.js";
import { config } from "../src/config.js";
import { closeAllHarnesses } from "../src/harness.js";
import { runR1 } from "../src/harness-scenarios.js";
import { runSeed } from "../src/random.js";
import { writeReport } from "../src/report.js";

// No child process outlives a test, even one that timed out.
afterEach(closeAllHarnesses);

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
      const r = await runR1({ test: "R1", adapter, seed, recoveryLimitMs: RECOVERY_LIMIT_MS[adapter] as number });
      const report = reportR1({ test: "R1", adapter, seed, cfg, r, withStore: false });
      console.log(`[R1 ${adapter}] ${report.verdict}: ${JSON.stringify(report.bars.map((b) => `${b.name}=${String(b.value)}`))}`);
      console.log(`[R1 ${adapter}] finishedThenRunAgain=${r.check.finishedThenRunAgain} (no store: reported, not judged)`);
      expect(report.bars.filter((b) => !b.ok)).toEqual([]);
    });
  });
}
