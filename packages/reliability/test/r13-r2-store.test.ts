/**
 * R13 with R2 (issue 15): the broker crashes (kill -9) and restarts gracefully under a steady
 * producer and two workers with the Redis job store. On the redis adapter the store shares the
 * broker's private Redis and goes down with it; RabbitMQ and NATS keep theirs on a private Redis
 * (AOF always) that stays up. R2's bars, plus `finishedThenRunAgain` = 0.
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
  memory: "capability outOfProcess absent (the memory broker and store live in one process)",
  // With a store it would lose too: the records of the messages the emulator dropped say `published`, so nothing republishes them.
  sqs: "capability persistentBroker absent (the SQS emulator keeps messages in memory; a restart loses them by design); covered by R3",
};

for (const name of selectedAdapters()) {
  if (name !== "redis" && name !== "rabbitmq" && name !== "nats") {
    const adapter = name;
    const reason = SKIP[name] ?? "not a broker R2 restarts";
    writeReport({ test: "R2-store", adapter, seed: 0, figures: {}, bars: [], verdict: "skip", reason });
    it.skip(`R2 with a store [${adapter}] skipped: ${reason}`, () => {});
    continue;
  }
  const adapter = name;
  describe(`R2 broker restart with a Redis store [${adapter}]`, () => {
    const runs = config().chaos.r2StoreRuns.filter((run) => adapter === "redis" || !run.faults.some((f) => f.kind === "graceful-nosave"));
    for (const run of runs) {
      it(`${run.name}: loses no accepted job, never runs a finished job again (tier ${config().tier})`, async () => {
        const cfg = config().chaos.r2;
        const r = await runR2({ test: "R2-store", adapter, run, store: true });
        const test = runs.length === 1 ? "R2-store" : `R2-store-${run.name}`;
        const report = reportR2({ test, adapter, cfg, run, r, withStore: true });
        console.log(
          `[R2-store ${adapter} ${run.name}] ${report.verdict} in ${r.wallMs} ms: ${JSON.stringify(report.bars.map((b) => `${b.name}=${String(b.value)}`))}`,
        );
        expect(report.bars.filter((b) => !b.ok)).toEqual([]);
      });
    }
  });
}
