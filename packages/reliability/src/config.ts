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
  /** R8 (leases), R9 E2/E3/E5, R10 (dead letters): core's client and workers in the test process. */
  readonly semantics: SemanticsConfig;
  /** R1, R2 and R11-C1/C2: worker and producer processes, kill -9 and broker restarts. */
  readonly chaos: ChaosConfig;
  /** R3, R6, R9-E1/E4, R4-H8/H7b and R7: network faults, shutdown, crash loops and soak, in forked processes. */
  readonly processLevel: ProcessLevelConfig;
}

/** One R3 run: faults at ms from the start of the producer. */
export interface R3Run {
  readonly name: string;
  readonly durationMs: number;
  readonly steps: readonly R3Step[];
}

/** One step of an R3 schedule. `pause`, `pause-downstream` and `refuse` last `forMs`; a pause may end with a `reset` before `pass`. */
export type R3Step =
  | { readonly atMs: number; readonly kind: "reset" }
  | { readonly atMs: number; readonly kind: "pause" | "pause-downstream"; readonly forMs: number; readonly endWith?: "reset" }
  | { readonly atMs: number; readonly kind: "refuse"; readonly forMs: number }
  | { readonly atMs: number; readonly kind: "latency"; readonly forMs: number; readonly ms: number; readonly jitterMs: number };

/** Parameters of the process-level cases (R3, R6, R9-E1/E4, R4-H8/H7b, R7). */
export interface ProcessLevelConfig {
  readonly r3: {
    readonly runs: readonly R3Run[];
    readonly ratePerSec: number;
    readonly maxInFlight: number;
    readonly workers: number;
    readonly concurrency: number;
    readonly handlerMs: readonly [number, number];
  };
  readonly r6: {
    readonly concurrency: number;
    readonly prefetch: number;
    /** G1: job length and shutdown deadline; G2: the long jobs' length and deadline. */
    readonly g1JobMs: number;
    readonly g1DeadlineMs: number;
    readonly g2JobMs: number;
    readonly g2DeadlineMs: number;
  };
  readonly r9: {
    /** E1: enqueues through the proxy, RST every `e1ResetEveryMs`. */
    readonly e1Jobs: number;
    readonly e1ResetEveryMs: number;
    /** E1's producer rate (enqueues/s), so that the run sees many resets. */
    readonly e1RatePerSec: number;
    /** E4: the broker is down this long while the producer enqueues. */
    readonly e4OutageMs: number;
    readonly e4RunMs: number;
  };
  readonly h8: {
    /** Worker option `maxDeliveries` (broker-side delivery count bound). */
    readonly maxDeliveries: number;
    /** Innocent jobs (maxAttempts 5) enqueued beside the poison. */
    readonly innocentJobs: number;
    /** H7b: how long the event loop is blocked (beyond the lease). */
    readonly h7bBlockMs: number;
  };
  readonly r7: {
    /** R7a length (minutes; `JOBS_RELIABILITY_SOAK_MINUTES` overrides it) and warm-up. */
    readonly minutes: number;
    readonly warmUpMs: number;
    /** R7b churn: proxy reset every `churnResetEveryMs` for `churnMinutes` (overridden likewise). */
    readonly churnMinutes: number;
    readonly churnResetEveryMs: number;
    readonly sampleEveryMs: number;
    readonly ratePerSec: number;
  };
}

/** Parameters of R1 (kill -9 workers; R11-C2 has the same shape) and R2 (broker restarts; R11-C1 its crash variant). */
export interface ChaosConfig {
  readonly r1: {
    readonly jobs: number;
    readonly minKills: number;
    readonly workers: number;
    readonly concurrency: number;
    readonly prefetch: number;
    /** Handler sleep range [min, max) ms; `cpuFraction` of jobs also burn `cpuMs`. */
    readonly handlerMs: readonly [number, number];
    readonly cpuFraction: number;
    readonly cpuMs: number;
    /** Time between kills, uniform in [min, max) ms, from the first start; respawn delay after each kill. */
    readonly killEveryMs: readonly [number, number];
    readonly respawnMs: number;
    /** Stop killing at this fraction of jobs completed. */
    readonly stopKillingAt: number;
    /** Enqueues pending at once from the one producer. */
    readonly producerInFlight: number;
    /**
     * The producer's steady rate. R1 says "full speed", but 3 × 8 slots run ~350 jobs/s, so 2,000
     * jobs would be 90 % done in ~6 s, before a second kill at U(2, 5) s: paced so that 90 % is
     * reached after `minKills` kills even at the longest interval (jobs × 0.9 / (minKills × 5 s)).
     */
    readonly producerRatePerSec: number;
  };
  readonly r2: {
    /** One run per entry: its length and its faults (at ms from the start, broker down for `outageMs`). */
    readonly runs: readonly R2Run[];
    readonly ratePerSec: number;
    readonly maxInFlight: number;
    readonly workers: number;
    readonly concurrency: number;
    readonly handlerMs: readonly [number, number];
    /** R11-C1: the crash variant, shortened (Redis without AOF must lose the backlog it held). */
    readonly c1Run: R2Run;
  };
  /** R1 with a job store (issue 15): the same shape as `r1`. */
  readonly r1Store: ChaosConfig["r1"];
  /** R2 with a job store: its runs (the rest is `r2`'s). */
  readonly r2StoreRuns: readonly R2Run[];
  /** The store restart case. */
  readonly storeRestart: StoreRestartConfig;
}

/** R13 store restart (issue 15): a steady producer and workers with a Redis store whose server is killed (-9) and restarted. */
export interface StoreRestartConfig {
  readonly durationMs: number;
  readonly ratePerSec: number;
  readonly maxInFlight: number;
  readonly workers: number;
  readonly concurrency: number;
  readonly handlerMs: readonly [number, number];
  /** At ms from the producer's first accepted enqueue, the store's Redis is down for `outageMs`. */
  readonly faults: readonly { readonly atMs: number; readonly outageMs: number }[];
}

/** One R2 run. */
export interface R2Run {
  readonly name: string;
  readonly durationMs: number;
  readonly faults: readonly { readonly atMs: number; readonly kind: "crash" | "graceful" | "graceful-nosave"; readonly outageMs: number }[];
}

const R1_COMMON = {
  workers: 3,
  concurrency: 8,
  prefetch: 8,
  handlerMs: [20, 120],
  cpuFraction: 0.01,
  cpuMs: 5,
  killEveryMs: [2_000, 5_000],
  respawnMs: 500,
  stopKillingAt: 0.9,
  producerInFlight: 64,
} as const;
// R2 handlers (mean 90 ms, 2 × 8 slots: ~175 jobs/s) are slower than the producer (200/s), so a backlog is
// always stored in the broker when it goes down: the restart must keep it (and R11-C1, without AOF, loses it).
const R2_COMMON = {
  ratePerSec: 200,
  maxInFlight: 50,
  workers: 2,
  concurrency: 8,
  handlerMs: [45, 135],
  c1Run: { name: "crash", durationMs: 15_000, faults: [{ atMs: 8_000, kind: "crash", outageMs: 2_000 }] },
} as const;

// With a store, tier A keeps R1's kills (the figure needs orphans and acks cut short) on half the jobs,
// paced the same way (1,000 × 0.9 / (3 × 5 s) = 60/s); R2 keeps its crash-and-graceful run, because a
// kill -9 and a graceful stop lose acks differently, and the throughput bar needs 10 s after each.
const STORE_RESTART_COMMON = { ratePerSec: 100, maxInFlight: 50, workers: 2, concurrency: 8, handlerMs: [20, 80] } as const;

const CHAOS_A: ChaosConfig = {
  r1: { ...R1_COMMON, jobs: 2_000, minKills: 4, producerRatePerSec: 90 },
  r1Store: { ...R1_COMMON, jobs: 1_000, minKills: 3, producerRatePerSec: 60 },
  r2StoreRuns: [
    {
      name: "crash+graceful",
      durationMs: 40_000,
      faults: [
        { atMs: 10_000, kind: "crash", outageMs: 2_000 },
        { atMs: 25_000, kind: "graceful", outageMs: 2_000 },
      ],
    },
  ],
  // One kill -9 of the store's Redis (2 s down) 8 s into a 20-s run at 100 jobs/s: ~2,000 jobs.
  storeRestart: { ...STORE_RESTART_COMMON, durationMs: 20_000, faults: [{ atMs: 8_000, outageMs: 2_000 }] },
  r2: {
    ...R2_COMMON,
    runs: [
      {
        name: "crash+graceful",
        durationMs: 40_000,
        faults: [
          { atMs: 10_000, kind: "crash", outageMs: 2_000 },
          { atMs: 25_000, kind: "graceful", outageMs: 2_000 },
        ],
      },
    ],
  },
};

const CHAOS_B: ChaosConfig = {
  r1: { ...R1_COMMON, jobs: 10_000, minKills: 12, producerRatePerSec: 150 },
  r1Store: { ...R1_COMMON, jobs: 10_000, minKills: 12, producerRatePerSec: 150 },
  // Every crash and graceful variant of R2 (below), with a store.
  r2StoreRuns: (["crash", "graceful", "graceful-nosave"] as const).flatMap((kind) => [
    { name: `${kind}-O2s`, durationMs: 70_000, faults: [15_000, 35_000, 55_000].map((atMs) => ({ atMs, kind, outageMs: 2_000 })) },
    { name: `${kind}-O60s`, durationMs: 100_000, faults: [{ atMs: 15_000, kind, outageMs: 60_000 }] },
  ]),
  // Three kills of the store's Redis, the last one longer than the lease (its claims expire).
  storeRestart: {
    ...STORE_RESTART_COMMON,
    durationMs: 60_000,
    faults: [
      { atMs: 10_000, outageMs: 2_000 },
      { atMs: 25_000, outageMs: 2_000 },
      { atMs: 40_000, outageMs: 8_000 },
    ],
  },
  r2: {
    ...R2_COMMON,
    // Every variant: 70 s with outages of 2 s at 15, 35 and 55 s; then one 60-s outage at 15 s.
    runs: (["crash", "graceful", "graceful-nosave"] as const).flatMap((kind) => [
      { name: `${kind}-O2s`, durationMs: 70_000, faults: [15_000, 35_000, 55_000].map((atMs) => ({ atMs, kind, outageMs: 2_000 })) },
      { name: `${kind}-O60s`, durationMs: 100_000, faults: [{ atMs: 15_000, kind, outageMs: 60_000 }] },
    ]),
  },
};

/** Parameters of R8, R9 E2/E3/E5 and R10 (RELIABILITY.md d.3). */
export interface SemanticsConfig {
  /** R8-L1: the long job runs this many leases. */
  readonly l1LeaseMultiple: number;
  /** R8-L2: jobs held by one worker (concurrency 1, prefetch 50), each running `l2JobMs`. */
  readonly l2Jobs: number;
  readonly l2JobMs: number;
  /** R8-L3: retry backoff (4 × lease). */
  readonly l3BackoffMs: number;
  /** R8-L5: the lowered native delay limit and the job's delay. */
  readonly l5MaxDelayMs: number;
  readonly l5DelayMs: number;
  /** R8-L4 (tier B, RabbitMQ): a job longer than the node's consumer_timeout (20 s). */
  readonly l4JobMs: number;
  /** R8-L6: how long the event loop is blocked (beyond the lease). */
  readonly l6BlockMs: number;
  /** R9-E2: jobs enqueued, then re-enqueued with the same id. */
  readonly e2Jobs: number;
  /** R9-E5: bulk size, and the payload size of the byte-split run (SQS batches by bytes too). */
  readonly e5Items: number;
  readonly e5PayloadBytes: number;
  /** R10-D2: dead jobs requeued while two workers run. */
  readonly d2Jobs: number;
}

const SEMANTICS_A: SemanticsConfig = {
  l1LeaseMultiple: 3,
  l2Jobs: 12,
  l2JobMs: 1_000,
  l3BackoffMs: 20_000,
  l5MaxDelayMs: 2_000,
  l5DelayMs: 7_000,
  l4JobMs: 30_000,
  l6BlockMs: 8_000,
  e2Jobs: 50,
  e5Items: 100,
  e5PayloadBytes: 60_000,
  d2Jobs: 100,
};

const PROCESS_A: ProcessLevelConfig = {
  r3: {
    // Tier A: one 40-s run, N1 (3 resets) then N2 (a 10-s pause that heals).
    runs: [
      {
        name: "N1+N2",
        durationMs: 40_000,
        steps: [
          { atMs: 4_000, kind: "reset" },
          { atMs: 7_000, kind: "reset" },
          { atMs: 10_000, kind: "reset" },
          { atMs: 15_000, kind: "pause", forMs: 10_000 },
        ],
      },
    ],
    ratePerSec: 200,
    maxInFlight: 50,
    workers: 2,
    concurrency: 8,
    handlerMs: [20, 80],
  },
  r6: { concurrency: 8, prefetch: 16, g1JobMs: 3_000, g1DeadlineMs: 10_000, g2JobMs: 20_000, g2DeadlineMs: 5_000 },
  r9: { e1Jobs: 2_000, e1ResetEveryMs: 500, e1RatePerSec: 200, e4OutageMs: 15_000, e4RunMs: 25_000 },
  h8: { maxDeliveries: 3, innocentJobs: 40, h7bBlockMs: 12_000 },
  r7: { minutes: 10, warmUpMs: 120_000, churnMinutes: 5, churnResetEveryMs: 2_000, sampleEveryMs: 10_000, ratePerSec: 200 },
};

const PROCESS_B: ProcessLevelConfig = {
  ...PROCESS_A,
  r3: {
    ...PROCESS_A.r3,
    runs: [
      { name: "N1", durationMs: 60_000, steps: Array.from({ length: 10 }, (_, i) => ({ atMs: 5_000 * (i + 1), kind: "reset" as const })) },
      { name: "N2", durationMs: 60_000, steps: [{ atMs: 15_000, kind: "pause", forMs: 10_000 }] },
      { name: "N3", durationMs: 70_000, steps: [{ atMs: 10_000, kind: "pause", forMs: 45_000, endWith: "reset" }] },
      {
        name: "N4",
        durationMs: 60_000,
        steps: [
          { atMs: 15_000, kind: "reset" },
          { atMs: 15_050, kind: "refuse", forMs: 10_000 },
        ],
      },
      { name: "N5", durationMs: 60_000, steps: [{ atMs: 15_000, kind: "pause-downstream", forMs: 10_000 }] },
      { name: "N6", durationMs: 60_000, steps: [{ atMs: 0, kind: "latency", forMs: 60_000, ms: 200, jitterMs: 100 }] },
    ],
  },
  r9: { ...PROCESS_A.r9, e1Jobs: 10_000 },
};

const PRESETS: Record<Tier, ScenarioConfig> = {
  A: {
    tier: "A",
    inProcess: { r4ControlJobs: 100, r4ZombieJobs: 1_000, r5GoodJobs: 200 },
    semantics: SEMANTICS_A,
    chaos: CHAOS_A,
    processLevel: PROCESS_A,
  },
  B: {
    tier: "B",
    inProcess: { r4ControlJobs: 500, r4ZombieJobs: 1_000, r5GoodJobs: 1_000 },
    semantics: { ...SEMANTICS_A, l2Jobs: 50, e2Jobs: 500, d2Jobs: 1_000 },
    chaos: CHAOS_B,
    processLevel: PROCESS_B,
  },
};

/** The parameters of this run's tier. */
export function config(): ScenarioConfig {
  return PRESETS[tier()];
}
