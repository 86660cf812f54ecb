/**
 * R11 — negative controls (RELIABILITY.md d.3): a chaos test that cannot fail is worthless. Each
 * control breaks durability on purpose and asserts that the checker DETECTS the loss.
 * - C1: Redis with `--appendonly no --save ""`, R2's crash variant ⇒ lost > 0.
 * - C2: workers whose broker acks every delivery before the handler (`ackBeforeHandle`), R1 ⇒ lost > 0.
 * Both run on Redis (tier A).
 */
import { afterEach, describe, expect, it } from "vitest";
import { selectedAdapters } from "../src/adapters.js";
import { config } from "../src/config.js";
import { closeAllHarnesses } from "../src/harness.js";
import { runR1, runR2, sample } from "../src/harness-scenarios.js";
import { runSeed } from "../src/random.js";
import { bar, writeReport } from "../src/report.js";

// No child process outlives a test, even one that timed out.
afterEach(closeAllHarnesses);

const onRedis = selectedAdapters().includes("redis");

describe.skipIf(!onRedis)("R11 negative controls [redis] (skipped unless redis is selected)", () => {
  it("C2: ack-before-handle under R1's kills is reported as losing jobs", async () => {
    const seed = runSeed();
    console.log(`[R11-C2 redis] seed=${seed} (replay with JOBS_RELIABILITY_SEED=${seed})`);
    const r = await runR1({ test: "R11-C2", adapter: "redis", seed, wrap: "ackBeforeHandle" });
    const c = r.check;
    const f = r.figures as { kills: number; sumInFlightAtKills: number };
    const report = writeReport({
      test: "R11-C2",
      adapter: "redis",
      seed,
      config: { ...config().chaos.r1, wrap: "ackBeforeHandle", ledgers: r.dir },
      figures: {
        ...r.figures,
        accepted: c.accepted,
        completed: c.completed,
        lost: c.lost.length,
        lostSample: sample(c.lost),
        duplicatesUnexplained: c.unexplained.length,
        wallMs: r.wallMs,
      },
      bars: [
        // The control passes when the inner R1 fails on its "lost = 0" bar.
        bar("loss detected (R1 lost)", c.lost.length, "> 0", c.lost.length > 0),
        bar("kills", f.kills, "≥ 1", f.kills >= 1),
      ],
      faults: r.faults,
    });
    console.log(`[R11-C2 redis] ${report.verdict}: lost=${c.lost.length} of ${c.accepted} accepted after ${f.kills} kills`);
    expect(c.lost.length).toBeGreaterThan(0);
    // Only what the killed workers held can be lost: at most prefetch deliveries per kill.
    expect(c.lost.length).toBeLessThanOrEqual(f.kills * config().chaos.r1.prefetch);
    expect(report.verdict).toBe("pass");
  });

  it("C1: Redis without AOF, crashed under R2's load, is reported as losing accepted jobs", async () => {
    const run = config().chaos.r2.c1Run;
    const r = await runR2({ test: "R11-C1", adapter: "redis", run, redisAof: false });
    const c = r.check;
    const report = writeReport({
      test: "R11-C1",
      adapter: "redis",
      seed: 0,
      config: { ...config().chaos.r2, run, redisAof: false, ledgers: r.dir },
      figures: {
        accepted: c.accepted,
        completed: c.completed,
        lostAccepted: c.lost.length,
        lostSample: sample(c.lost),
        outages: r.outages,
        wallMs: r.wallMs,
      },
      bars: [bar("loss detected (R2 lost accepted)", c.lost.length, "> 0", c.lost.length > 0)],
      faults: r.faults,
    });
    console.log(`[R11-C1 redis] ${report.verdict}: lost=${c.lost.length} of ${c.accepted} accepted`);
    expect(c.lost.length).toBeGreaterThan(0);
    expect(report.verdict).toBe("pass");
  });
});
