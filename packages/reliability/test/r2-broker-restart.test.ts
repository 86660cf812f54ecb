/**
 * R2 — broker restart mid-run (RELIABILITY.md d.3). The broker crashes (kill -9) and restarts
 * gracefully under a steady producer and two workers; no accepted enqueue may be lost, producers
 * and workers must reconnect by themselves, and no enqueue may hang. The same runs with a job
 * store are in r13-store-chaos.
 */
import { afterEach, describe, expect, it } from "vitest";
import { selectedAdapters } from "../src/adapters.js";
import { reportR2 } from "../src/chaos-reports.js";
import { config } from "../src/config.js";
import { closeAllHarnesses } from "../src/harness.js";
import { runR2 } from "../src/harness-scenarios.js";
import { writeReport } from "../src/report.js";

// No child process outlives a test, even one that timed out.
afterEach(closeAllHarnesses);

const SKIP: Record<string, string> = {
  memory: "capability outOfProcess absent (the memory broker lives in one process)",
  sqs: "capability persistentBroker absent (the SQS emulator keeps messages in memory; a restart loses them by design); covered by R3",
};

for (const name of selectedAdapters()) {
  if (name !== "redis" && name !== "rabbitmq" && name !== "nats") {
    const adapter = name;
    const reason = SKIP[name] ?? "not a broker R2 restarts";
    writeReport({ test: "R2", adapter, seed: 0, figures: {}, bars: [], verdict: "skip", reason });
    it.skip(`R2 [${adapter}] skipped: ${reason}`, () => {});
    continue;
  }
  const adapter = name;
  describe(`R2 broker restart [${adapter}]`, () => {
    // Redis alone has a separate "shutdown nosave" variant; elsewhere the graceful stop is one.
    const runs = config().chaos.r2.runs.filter((run) => adapter === "redis" || !run.faults.some((f) => f.kind === "graceful-nosave"));
    for (const run of runs) {
      it(`${run.name}: loses no accepted job, reconnects, never hangs (tier ${config().tier})`, async () => {
        const cfg = config().chaos.r2;
        const r = await runR2({ test: "R2", adapter, run });
        const test = runs.length === 1 ? "R2" : `R2-${run.name}`;
        const report = reportR2({ test, adapter, cfg, run, r, withStore: false });
        console.log(
          `[R2 ${adapter} ${run.name}] ${report.verdict}: ${JSON.stringify(report.bars.map((b) => `${b.name}=${String(b.value)}`))}`,
        );
        console.log(`[R2 ${adapter} ${run.name}] finishedThenRunAgain=${r.check.finishedThenRunAgain} (no store: reported, not judged)`);
        expect(report.bars.filter((b) => !b.ok)).toEqual([]);
      });
    }
  });
}
