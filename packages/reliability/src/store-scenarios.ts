/**
 * R13's store restart (issue 15, RELIABILITY.md R13): the Redis broker and a Redis store on a
 * separate private Redis (AOF always); a steady producer and two workers; the store's Redis is
 * killed with SIGKILL and restarted mid-run. Nothing accepted may be lost, no finished job may run
 * again, and every accepted job's record must end `succeeded` (read back with `client.getJob`).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createClient, type JobStatus } from "@jobs/core";
import { createBroker, createStore, startStoreTarget, startTarget } from "./adapters.js";
import { config, TIMINGS } from "./config.js";
import { createHarness } from "./harness.js";
import { drainAndCheck, QUEUE, type ScenarioResult } from "./harness-scenarios.js";
import type { LedgerLine } from "./ledger.js";
import type { WorkerParams } from "./processes/params.js";

/** What the records said at the end of a store-restart run. */
export interface RecordsFigure {
  /** Accepted enqueues (each has its job id in its `accepted` line). */
  readonly accepted: number;
  /** Their records by status (`missing`: `getJob` returned null). */
  readonly byStatus: Readonly<Record<string, number>>;
  /** Accepted jobs whose record is not `succeeded`, with what it says. */
  readonly notSucceeded: readonly { readonly key: string; readonly jobId: string; readonly status: JobStatus | "missing" }[];
  /** Accepted jobs a worker reported `job.succeeded` for whose record does not say `succeeded` (a lost write). */
  readonly succeededLost: number;
  /** Outcome-unknown enqueues that have a record, by status (they may run: the sweeper publishes them). */
  readonly ambiguousByStatus: Readonly<Record<string, number>>;
}

/** Options of `runStoreRestart`. */
export interface StoreRestartOptions {
  readonly test: string;
  /** The store's Redis keeps an append-only file (default true); false is the negative control (a kill -9 loses every record). */
  readonly storeAof?: boolean;
}

/** Reads the record of every enqueue with a job id in the producer's lines, through `client.getJob`. */
async function readRecords(lines: readonly LedgerLine[], client: ReturnType<typeof createClient>): Promise<RecordsFigure> {
  const accepted = new Map<string, string>();
  const ambiguous = new Map<string, string>();
  for (const l of lines) {
    if (l.kind === "accepted" && typeof l.id === "string" && typeof l.jobId === "string") accepted.set(l.id, l.jobId);
  }
  const succeededKeys = new Set(lines.filter((l) => l.kind === "succeeded").map((l) => l.id));
  const byStatus: Record<string, number> = {};
  const notSucceeded: { key: string; jobId: string; status: JobStatus | "missing" }[] = [];
  for (const [key, jobId] of accepted) {
    const status = (await client.getJob(jobId))?.status ?? "missing";
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    if (status !== "succeeded") notSucceeded.push({ key, jobId, status });
  }
  // An outcome-unknown enqueue has no job id in its line: its record, if any, is found by its key (metadata.k) below.
  for (const l of lines) if (l.kind === "rejected" && l.ambiguous === true && typeof l.id === "string") ambiguous.set(l.id, "");
  const ambiguousByStatus: Record<string, number> = {};
  if (ambiguous.size > 0) {
    let cursor: string | undefined;
    do {
      const page = await client.listJobs({ queue: QUEUE, limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
      for (const r of page.jobs) {
        const k = r.metadata?.k;
        if (typeof k === "string" && ambiguous.has(k)) ambiguousByStatus[r.status] = (ambiguousByStatus[r.status] ?? 0) + 1;
      }
      cursor = page.cursor;
    } while (cursor !== undefined);
  }
  const succeededLost = notSucceeded.filter((n) => succeededKeys.has(n.key)).length;
  return { accepted: accepted.size, byStatus, notSucceeded, succeededLost, ambiguousByStatus };
}

/**
 * The store restart: a producer at the tier's steady rate and two workers with a Redis broker and a
 * Redis store on another private Redis (AOF always); at each scheduled time the store's Redis is
 * killed (-9) and started again on the same data after the outage; then the drain, the checker, and
 * every record read back.
 */
export async function runStoreRestart(options: StoreRestartOptions): Promise<ScenarioResult & { readonly records: RecordsFigure }> {
  const cfg = config().chaos.storeRestart;
  const started = Date.now();
  const target = await startTarget("redis", options.test);
  const h = createHarness(options.test, "redis");
  const store = await startStoreTarget(target, { shared: false, aof: options.storeAof ?? true }).catch(async (error: unknown) => {
    await target.stop();
    throw error;
  });
  try {
    const server = store.server;
    if (server === undefined) throw new Error("[reliability] the store restart needs the store on its own Redis");
    const params: Omit<WorkerParams, "ledgerDir"> = {
      spec: target.spec,
      store: store.spec,
      queue: QUEUE,
      concurrency: cfg.concurrency,
      prefetch: cfg.concurrency,
      leaseMs: TIMINGS.leaseMs,
    };
    await Promise.all(Array.from({ length: cfg.workers }, () => h.spawnWorker(params)));
    h.spawnProducer({
      spec: target.spec,
      store: store.spec,
      queue: QUEUE,
      keyPrefix: "j",
      count: Math.ceil((cfg.ratePerSec * cfg.durationMs) / 1000) + 1,
      durationMs: cfg.durationMs,
      ratePerSec: cfg.ratePerSec,
      maxInFlight: cfg.maxInFlight,
      handlerMs: cfg.handlerMs,
      cpuFraction: 0,
      cpuMs: 0,
      seed: 3,
    });
    await h.until(() => h.accepted.size > 0, 60_000, "the producer's first accepted enqueue");
    const t0 = Date.now();
    for (const f of [...cfg.faults].sort((a, b) => a.atMs - b.atMs)) {
      const due = t0 + f.atMs - Date.now();
      if (due > 0) await sleep(due);
      const downAt = Date.now();
      await server.kill("SIGKILL");
      const rest = downAt + f.outageMs - Date.now();
      if (rest > 0) await sleep(rest);
      await server.start();
      h.fault("store-crash", { t: downAt, until: Date.now(), mode: "crash" });
    }
    const lastFaultT = h.faults.at(-1)?.until ?? Date.now();
    await h.until(() => h.producersFinished === 1, cfg.durationMs + 60_000, "the producer to finish");
    const { drain, check: report } = await drainAndCheck(h, target, lastFaultT);
    const lines = h.read().lines;
    const broker = createBroker(target.spec);
    const reader = createStore(store.spec);
    let records: RecordsFigure;
    try {
      records = await readRecords(lines, createClient({ broker, store: reader }));
    } finally {
      await reader.close().catch(() => {});
      await broker.close().catch(() => {});
    }
    const count = (kind: string): number => lines.filter((l) => l.kind === kind).length;
    // Producer ids are fresh UUIDs: an enqueue answered "duplicate" is one whose record insert was
    // answered twice (a replay after the store restart found the record its first run had written).
    const acceptedDuplicate = lines.filter((l) => l.kind === "accepted" && l.duplicate === true).map((l) => l.id);
    const accAt = new Map<string | undefined, number>(lines.filter((l) => l.kind === "accepted").map((l) => [l.id, l.t]));
    const firstStart = new Map<string | undefined, number>();
    for (const l of lines) if (l.kind === "start" && (firstStart.get(l.id) ?? Number.POSITIVE_INFINITY) > l.t) firstStart.set(l.id, l.t);
    const acceptToStart = [...firstStart]
      .flatMap(([id, t]) => (accAt.has(id) ? [t - (accAt.get(id) as number)] : []))
      .sort((a, b) => a - b);
    const succeededKeys = new Set(lines.filter((l) => l.kind === "succeeded").map((l) => l.id));
    return {
      check: report,
      drain,
      faults: h.faults,
      crashes: h.crashes.length,
      wallMs: Date.now() - started,
      dir: h.dir,
      records,
      figures: {
        storeDisconnected: count("store-disconnected"),
        storeReconnected: count("store-reconnected"),
        storeErrors: count("store-error"),
        workerErrors: count("worker-error"),
        leaseLost: count("lease-lost"),
        // A worker told its job's claim was lost although no other worker ever started it: a refused
        // finish that had in fact been written (its reply lost, the command replayed).
        leaseLostNeverStartedElsewhere: lines.filter(
          (l) => l.kind === "lease-lost" && !lines.some((s) => s.kind === "start" && s.id === l.id && s.pid !== l.pid),
        ).length,
        jobsWithoutSucceededLine: [...accAt.keys()].filter((k) => !succeededKeys.has(k)).length,
        acceptedAsDuplicate: acceptedDuplicate.length,
        acceptedAsDuplicateSample: acceptedDuplicate.slice(0, 10),
        acceptToStartMaxMs: acceptToStart.at(-1) ?? 0,
        acceptToStartOver4sMs: acceptToStart.filter((ms) => ms > 4_000),
        rejectedCodes: countBy(lines.filter((l) => l.kind === "rejected").map((l) => String(l.code))),
      },
    };
  } finally {
    await h.close();
    await store.stop();
    await target.stop();
  }
}

function countBy(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
