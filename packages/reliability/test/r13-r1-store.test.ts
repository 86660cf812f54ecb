/**
 * R13 with R1 (issue 15): kill -9 workers mid-job under load with the Redis job store, on every
 * networked broker (the redis adapter's store shares its private Redis; the others get a private
 * Redis with AOF always). R1's bars, plus: no job starts after a worker finished it successfully
 * (`finishedThenRunAgain` = 0), because a delivery of a `succeeded` record is acked unrun. The
 * orphan recovery bar is the broker's, or the lease + 2 s where that is longer (RabbitMQ): an
 * orphan's redelivery waits for the dead worker's claim to run out (`recoveryLimitMs`).
 */
import { afterEach, describe, expect, it } from "vitest";
import { selectedAdapters } from "../src/adapters.js";
import { recoveryLimitMs, reportR1 } from "../src/chaos-reports.js";
import { config } from "../src/config.js";
import { closeAllHarnesses } from "../src/harness.js";
import { runR1 } from "../src/harness-scenarios.js";
import { runSeed } from "../src/random.js";
import { writeReport } from "../src/report.js";

// No child process outlives a test, even one that timed out.
afterEach(closeAllHarnesses);

for (const adapter of selectedAdapters()) {
  if (adapter === "memory") {
    const reason = "capability outOfProcess absent (the memory broker and store live in one process)";
    writeReport({ test: "R1-store", adapter, seed: 0, figures: {}, bars: [], verdict: "skip", reason });
    it.skip(`R1 with a store [memory] skipped: ${reason}`, () => {});
    continue;
  }
  describe(`R1 kill -9 workers with a Redis store [${adapter}]`, () => {
    it(`loses nothing, explains every duplicate, never runs a finished job again (tier ${config().tier})`, async () => {
      const cfg = config().chaos.r1Store;
      const seed = runSeed();
      console.log(`[R1-store ${adapter}] seed=${seed} (replay with JOBS_RELIABILITY_SEED=${seed})`);
      const limit = recoveryLimitMs(adapter, true);
      const r = await runR1({ test: "R1-store", adapter, seed, recoveryLimitMs: limit, store: true, params: cfg });
      const report = reportR1({ test: "R1-store", adapter, seed, cfg, r, withStore: true });
      console.log(
        `[R1-store ${adapter}] ${report.verdict} in ${r.wallMs} ms: ${JSON.stringify(report.bars.map((b) => `${b.name}=${String(b.value)}`))}`,
      );
      expect(report.bars.filter((b) => !b.ok)).toEqual([]);
    });
  });
}
