/**
 * Tier A in lanes: `bin/run.ts` splits the test files over two vitest processes that run side by
 * side, each still one file at a time, so that CI's wall time is about half the sum. The split, and
 * the order within a lane (longest first, vitest.config.ts), follow the measured length of each file
 * (below), so what runs beside what is the same on every run.
 */
import { basename } from "node:path";

/**
 * Tier A wall time of each test file on every adapter, in seconds, with nothing beside it on the
 * 2-core machine (2026-12-07: the smaller files measured in one run; R4 crash loops, R3, R6 and R8
 * from earlier whole runs; the three R13 files split by estimate). In the first two-lane run each
 * file took within a few seconds of these, except R6 (153 s), r13-r1-store (153 s) and the store
 * restart (37 s). Only the split and the order depend on these figures: a file missing here (a
 * new suite) still runs, counted as `UNMEASURED_SECONDS`, and `bin/run.ts` names it; every run
 * prints each file's time at the end, to update them from.
 */
export const TIER_A_SECONDS: Readonly<Record<string, number>> = {
  "r4-crash-loops.test.ts": 660,
  "r3-network-faults.test.ts": 240,
  "r1-kill-workers.test.ts": 165,
  "r2-broker-restart.test.ts": 190,
  "r13-r2-store.test.ts": 190,
  "r13-r1-store.test.ts": 170,
  "r6-graceful-shutdown.test.ts": 180,
  "r8-leases.test.ts": 180,
  "r9-e4-outage.test.ts": 175,
  "r9-e1-resets.test.ts": 115,
  "r4-handler-misbehaviour.test.ts": 95,
  "r11-negative-controls.test.ts": 90,
  "r13-store-restart.test.ts": 60,
  "r10-dead-letters.test.ts": 45,
  "credentials-t6.test.ts": 40,
  "r9-enqueue-outcomes.test.ts": 25,
  "security-inprocess.test.ts": 15,
  "insecure-t7.test.ts": 10,
  "r5-poison-payloads.test.ts": 10,
  "r12-config-preflight.test.ts": 10,
  "proxy-process.test.ts": 2,
  "checker.test.ts": 1,
  "lanes.test.ts": 1,
  "r7-sampler.test.ts": 1,
  "r7-soak.test.ts": 1,
};

/**
 * Files that must share a lane, so they never run at the same time: the cases that kill and
 * respawn workers and time the redelivery of their orphans (R1, R1 with a store, R11's controls).
 * Side by side they slowed each other's SQS orphan recovery by about 1 s, close to its 8 s bar.
 */
export const SAME_LANE: readonly (readonly string[])[] = [
  ["r1-kill-workers.test.ts", "r13-r1-store.test.ts", "r11-negative-controls.test.ts"],
];

/** What a file missing from `TIER_A_SECONDS` counts for. */
export const UNMEASURED_SECONDS = 120;

/** The estimate of a test file (its base name) for splitting and ordering. */
export function estimatedSeconds(file: string): number {
  return TIER_A_SECONDS[basename(file)] ?? UNMEASURED_SECONDS;
}

/** One lane: its files, in the order given, and their summed estimate. */
export interface Lane {
  readonly files: readonly string[];
  readonly seconds: number;
}

/**
 * Splits `files` into `count` lanes by their estimates (`seconds(file)`): longest first, each to the
 * lane with the least so far (ties to the lower lane). The files of a `together` group (base
 * names) count as one unit of their summed length and land in the same lane. Every file lands in
 * exactly one lane; lanes that would be empty are left out.
 */
export function planLanes(
  files: readonly string[],
  count: number,
  seconds: (file: string) => number = estimatedSeconds,
  together: readonly (readonly string[])[] = SAME_LANE,
): Lane[] {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`[reliability] lanes must be a whole number ≥ 1, got ${count}`);
  const units = new Map<string, string[]>();
  for (const file of [...new Set(files)].sort((a, b) => seconds(b) - seconds(a) || a.localeCompare(b))) {
    const group = together.findIndex((names) => names.includes(basename(file)));
    const key = group < 0 ? file : `group:${group}`;
    units.set(key, [...(units.get(key) ?? []), file]);
  }
  const length = (unit: readonly string[]): number => unit.reduce((sum, file) => sum + seconds(file), 0);
  const byLength = [...units.values()].sort((a, b) => length(b) - length(a) || (a[0] as string).localeCompare(b[0] as string));
  const lanes = Array.from({ length: count }, () => ({ files: [] as string[], seconds: 0 }));
  for (const unit of byLength) {
    let least = lanes[0] as (typeof lanes)[number];
    for (const lane of lanes) if (lane.seconds < least.seconds) least = lane;
    least.files.push(...unit);
    least.seconds += length(unit);
  }
  return lanes.filter((lane) => lane.files.length > 0);
}
