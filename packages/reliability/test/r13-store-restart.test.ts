/**
 * R13 store restart (issue 15): the Redis broker, and a Redis store on its own private Redis (AOF
 * always) that is killed with SIGKILL and restarted mid-run. Lost 0, no finished job run again,
 * and every accepted job's record ends `succeeded` (read back with `client.getJob`). One adapter
 * is enough: the store is the same Redis store behind every broker.
 */
import { afterEach, describe, expect, it } from "vitest";
import { selectedAdapters } from "../src/adapters.js";
import { config, TIMINGS } from "../src/config.js";
import { closeAllHarnesses } from "../src/harness.js";
import { sample } from "../src/harness-scenarios.js";
import { bar, writeReport } from "../src/report.js";
import { runStoreRestart } from "../src/store-scenarios.js";

// No child process outlives a test, even one that timed out.
afterEach(closeAllHarnesses);

for (const adapter of selectedAdapters()) {
  if (adapter !== "redis") {
    const reason = "run on the redis adapter only: the store under test (Redis) is the same behind every broker";
    writeReport({ test: "R13-store-restart", adapter, seed: 0, figures: {}, bars: [], verdict: "skip", reason });
    it.skip(`store restart [${adapter}] skipped: ${reason}`, () => {});
    continue;
  }
  describe(`R13 store restart [${adapter}]`, () => {
    it(`kill -9 of the store's Redis: loses nothing, every record ends succeeded (tier ${config().tier})`, async () => {
      const cfg = config().chaos.storeRestart;
      const r = await runStoreRestart({ test: "R13-store-restart" });
      const c = r.check;
      const notSucceeded = r.records.notSucceeded.length;
      const report = writeReport({
        test: "R13-store-restart",
        adapter,
        seed: 0,
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
          definiteCompleted: c.definiteCompleted.length,
          duplicatesExplained: c.explainedDuplicates,
          duplicatesUnexplained: c.unexplained.length,
          finishedThenRunAgain: c.finishedThenRunAgain,
          finishedThenRunAgainSample: c.finishedThenRunAgainSample,
          maxStarts: c.maxStarts,
          records: { ...r.records, notSucceeded: sample(r.records.notSucceeded) },
          longestPendingMs: c.maxPendingMs,
          unresolvedEnqueues: c.unresolved.length,
          deadLettered: c.deadLettered,
          workerCrashes: r.crashes,
          drainMs: r.drain.drainMs,
          wallMs: r.wallMs,
        },
        bars: [
          bar("lost", c.lost.length, "= 0", c.lost.length === 0),
          bar("phantom", c.phantom.length, "= 0", c.phantom.length === 0),
          bar("definitely rejected yet run", c.definiteCompleted.length, "= 0", c.definiteCompleted.length === 0),
          bar("finished then run again", c.finishedThenRunAgain, "= 0", c.finishedThenRunAgain === 0),
          bar("duplicates unexplained", c.unexplained.length, "= 0", c.unexplained.length === 0),
          bar("accepted jobs whose record is not succeeded", notSucceeded, `= 0 of ${r.records.accepted}`, notSucceeded === 0),
          bar("accepted", r.records.accepted, "> 0", r.records.accepted > 0),
          bar("unresolved enqueues", c.unresolved.length, "= 0", c.unresolved.length === 0),
          bar("unexpected dead letters", c.unexpectedDead.length, "= 0", c.unexpectedDead.length === 0),
          bar("worker crashes", r.crashes, "= 0", r.crashes === 0),
          bar("drained within cap", r.drain.drained, `counts 0 and quiet ${TIMINGS.leaseMs * 3} ms before the cap`, r.drain.drained),
        ],
        faults: r.faults,
      });
      console.log(
        `[R13-store-restart ${adapter}] ${report.verdict} in ${r.wallMs} ms: ${JSON.stringify(report.bars.map((b) => `${b.name}=${String(b.value)}`))}`,
      );
      expect(report.bars.filter((b) => !b.ok)).toEqual([]);
    });

    // The negative control (RELIABILITY.md R13): the same run with a store that keeps nothing on disk.
    // Tier B only: tier A's CI time is spent on the cases above.
    const control = config().tier === "B" ? it : it.skip;
    if (config().tier !== "B")
      writeReport({ test: "R13-C3", adapter, seed: 0, figures: {}, bars: [], verdict: "skip", reason: "tier B only (--full)" });
    control("C3: a store without AOF, killed mid-run, is reported as losing succeeded records (tier B)", async () => {
      const r = await runStoreRestart({ test: "R13-C3", storeAof: false });
      const c = r.check;
      const report = writeReport({
        test: "R13-C3",
        adapter,
        seed: 0,
        config: { ...config().chaos.storeRestart, storeAof: false, ledgers: r.dir },
        figures: {
          ...r.figures,
          accepted: c.accepted,
          completed: c.completed,
          lost: c.lost.length,
          finishedThenRunAgain: c.finishedThenRunAgain,
          records: { ...r.records, notSucceeded: sample(r.records.notSucceeded) },
          wallMs: r.wallMs,
        },
        bars: [
          bar(
            "succeeded jobs whose record is lost",
            r.records.succeededLost,
            "> 0 (the control must see the loss)",
            r.records.succeededLost > 0,
          ),
        ],
        faults: r.faults,
      });
      console.log(
        `[R13-C3 ${adapter}] ${report.verdict}: succeededLost=${r.records.succeededLost}, lost=${c.lost.length}, records=${JSON.stringify(r.records.byStatus)}`,
      );
      expect(report.bars.filter((b) => !b.ok)).toEqual([]);
    });
  });
}
