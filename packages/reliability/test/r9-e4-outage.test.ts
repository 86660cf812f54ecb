/**
 * R9-E4 — enqueue during a 15-s broker outage (RELIABILITY.md d.3): the private broker is killed
 * (kill -9) while a producer enqueues at 200/s, and started again on the same data. Each enqueue
 * resolves after recovery or rejects within `enqueueTimeout` + 1 s; none stays pending, and no
 * accepted job is lost. SQS (in-memory emulator): the proxy resets and refuses connections instead.
 */
import { describe, expect, it } from "vitest";
import { selectedAdapters } from "../src/adapters.js";
import { config, TIMINGS } from "../src/config.js";
import { runE4 } from "../src/enqueue-scenarios.js";
import { sample } from "../src/harness-scenarios.js";
import { skipCase } from "../src/in-process.js";
import { bar, writeReport } from "../src/report.js";

for (const adapter of selectedAdapters()) {
  if (adapter === "memory") {
    skipCase("R9-E4", adapter, "capability outOfProcess absent (the memory broker cannot go down apart from its process)");
    continue;
  }
  describe(`R9-E4 enqueue during an outage [${adapter}]`, () => {
    it(`no enqueue pending past enqueueTimeout + 1 s, nothing accepted lost (tier ${config().tier})`, async () => {
      const r = await runE4({ test: "R9-E4", adapter });
      const c = r.check;
      const pendingLimit = TIMINGS.enqueueTimeoutMs + 1_000;
      const report = writeReport({
        test: "R9-E4",
        adapter,
        seed: 0,
        config: {
          ...config().processLevel.r9,
          timings: TIMINGS,
          ledgers: r.dir,
          fault: adapter === "sqs" ? "proxy reset + refuse" : "kill -9 + start",
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
          bar("unresolved enqueues", c.unresolved.length, "= 0", c.unresolved.length === 0),
          bar("longest pending enqueue ms", c.maxPendingMs, `≤ ${pendingLimit}`, c.maxPendingMs <= pendingLimit),
          bar("lost accepted", c.lost.length, "= 0", c.lost.length === 0),
          bar("phantom", c.phantom.length, "= 0", c.phantom.length === 0),
          bar("definite rejections that ran", c.definiteCompleted.length, "= 0", c.definiteCompleted.length === 0),
          bar("duplicates unexplained", c.unexplained.length, "= 0", c.unexplained.length === 0),
          bar("worker crashes", r.crashes, "= 0", r.crashes === 0),
          bar("drained within cap", r.drain.drained, "counts 0 and quiet 3 × lease", r.drain.drained),
        ],
        faults: r.faults,
      });
      console.log(
        `[R9-E4 ${adapter}] ${report.verdict}: ${JSON.stringify(report.bars.map((b) => `${b.name}=${String(b.value)}`))} ${JSON.stringify(r.figures)}`,
      );
      expect(report.verdict).toBe("pass");
    });
  });
}
