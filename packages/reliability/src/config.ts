/**
 * Every scenario parameter of the reliability suite, in one place (RELIABILITY.md d.4), with the
 * tier A (every CI run) and tier B (`--full`) presets. Tests read `config()`; nothing else holds a
 * job count, a kill interval, an outage length or a lease.
 */

/** Timings every test uses (RELIABILITY.md d.1), so runs are short. Production defaults are separate and documented. */
export const TIMINGS = {
  /** Worker lease. */
  leaseMs: 5_000,
  /** Heartbeat period core uses for that lease (core derives it; stated here for the bars). */
  heartbeatMs: 1_500,
  /** Health check (ping) period and timeout of every adapter's connection. */
  pingIntervalMs: 1_000,
  pingTimeoutMs: 2_000,
  /** Reconnect backoff cap. */
  maxReconnectDelayMs: 1_000,
  /** Longest an enqueue may stay pending before it rejects. */
  enqueueTimeoutMs: 10_000,
} as const;

/** Which preset a run uses: `A` in CI, `B` with `--full`. */
export type Tier = "A" | "B";

/** The tier of this run, from `JOBS_RELIABILITY_TIER` (set by `pnpm test:reliability --full`). */
export function tier(): Tier {
  return process.env.JOBS_RELIABILITY_TIER === "B" ? "B" : "A";
}

/** Scenario parameters per tier. Each test family adds its own section. */
export interface ScenarioConfig {
  readonly tier: Tier;
  /** R4 (handler misbehaviour) and R5/T-cases (poison input), run in the test process. */
  readonly inProcess: {
    /** Good jobs running beside the misbehaving ones (R4 control stream). */
    readonly r4ControlJobs: number;
    /** Zombie (never-settling) H4 jobs before the heap is measured. */
    readonly r4ZombieJobs: number;
    /** Good jobs interleaved with the poison messages (R5). */
    readonly r5GoodJobs: number;
  };
}

const PRESETS: Record<Tier, ScenarioConfig> = {
  A: { tier: "A", inProcess: { r4ControlJobs: 100, r4ZombieJobs: 200, r5GoodJobs: 200 } },
  B: { tier: "B", inProcess: { r4ControlJobs: 500, r4ZombieJobs: 1_000, r5GoodJobs: 1_000 } },
};

/** The parameters of this run's tier. */
export function config(): ScenarioConfig {
  return PRESETS[tier()];
}
