/**
 * R2 — broker restart mid-run (RELIABILITY.md d.3). The broker crashes (kill -9) and restarts
 * gracefully under a steady producer and two workers; no accepted enqueue may be lost, producers
 * and workers must reconnect by themselves, and no enqueue may hang.
 */
import { afterEach, describe, expect, it } from "vitest";
import { selectedAdapters } from "../src/adapters.js";
import { config, TIMINGS } from "../src/config.js";
import { closeAllHarnesses } from "../src/harness.js";
import { runR2, sample } from "../src/harness-scenarios.js";
import { bar, writeReport } from "../src/report.js";

// No child process outlives a test, even one that timed out.
afterEach(closeAllHarnesses);

/** Reconnect bound after the broker is ready: backoff cap (1 s) + 3 s; RabbitMQ's quorum queues elect a leader first: 10 s. */
const RECONNECT_LIMIT_MS = { redis: TIMINGS.maxReconnectDelayMs + 3_000, nats: TIMINGS.maxReconnectDelayMs + 3_000, rabbitmq: 10_000 };
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
        const c = r.check;
        const limit = RECONNECT_LIMIT_MS[adapter];
        const producerMs = r.outages.map((o) => o.producerReconnectMs);
        const workerMs = r.outages.map((o) => o.workerReconnectMs);
        const within = (ms: number): boolean => ms >= 0 && ms <= limit;
        const throughputOk = r.outages.every((o) => Number.isNaN(o.throughputAfter) || o.throughputAfter >= 0.8 * o.throughputBefore);
        const pendingLimit = TIMINGS.enqueueTimeoutMs + 1_000;
        const report = writeReport({
          test: runs.length === 1 ? "R2" : `R2-${run.name}`,
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
            bar("unexpected dead letters", c.unexpectedDead.length, "= 0", c.unexpectedDead.length === 0),
            bar("drained within cap", r.drain.drained, `counts 0 and quiet ${TIMINGS.leaseMs * 3} ms before the cap`, r.drain.drained),
          ],
          faults: r.faults,
        });
        console.log(
          `[R2 ${adapter} ${run.name}] ${report.verdict}: ${JSON.stringify(report.bars.map((b) => `${b.name}=${String(b.value)}`))}`,
        );
        expect(report.bars.filter((b) => !b.ok)).toEqual([]);
      });
    }
  });
}
