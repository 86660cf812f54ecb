/**
 * A worker process with the behaviours of the process-level cases (R6 graceful shutdown, R4-H8
 * crash loops, R4-H7b blocked event loop, R7 soak): `processes/worker.ts`'s ledger lines, plus
 *
 * - the application's signal handling (R6): the first SIGTERM/SIGINT closes the worker with the
 *   deadline, then the broker, and lets the process end by itself (no `process.exit`); a second
 *   signal calls `close({ timeout: 0 })`, the immediate abort path;
 * - handlers that honour `ctx.signal` (an aborted job writes `aborted`, never `done`);
 * - payload-driven misbehaviour: `crash` (exit, SIGKILL, a throw from a timer, an un-awaited
 *   rejection) and `block` (the event loop blocked with `Atomics.wait`);
 * - `sampleEveryMs`: `gc()`, heap, rss, event-loop delay p99, active resources and listener
 *   counts every period, as `sample` lines (R7).
 */
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createWorker, defineJob, type JobInfo } from "@jobs/core";
import { createBroker } from "../adapters.js";
import { openLedger } from "../ledger.js";
import type { ChildMessage, ParentMessage } from "./params.js";
import { startSampler } from "./sampler.js";
import type { ModePayload, ModeWorkerParams } from "./worker-modes-params.js";

const params = JSON.parse(process.argv[2] ?? "{}") as ModeWorkerParams & { readonly ledgerDir: string };
const ledger = openLedger(params.ledgerDir, "worker");
const send = (message: ChildMessage): void => {
  if (process.connected) process.send?.(message);
};
// The orchestrator went away: nothing left to report to (test infrastructure, not the library).
process.on("disconnect", () => {
  if (!shuttingDown) process.exit(0);
});

const keyOf = (job: JobInfo | undefined): string | undefined => {
  const k = job?.metadata?.k;
  return typeof k === "string" ? k : undefined;
};

const broker = createBroker(params.spec, params.brokerOptions ?? {});
broker.on("disconnected", (e) => ledger.write("disconnected", { error: e.error?.message }));
broker.on("reconnected", () => ledger.write("reconnected"));
broker.on("error", (e) => ledger.write("broker-error", { error: e.error.message }));

const worker = createWorker({
  broker,
  concurrency: params.concurrency,
  prefetch: params.prefetch,
  lease: params.leaseMs,
  ...(params.shutdownTimeoutMs === undefined ? {} : { shutdownTimeout: params.shutdownTimeoutMs }),
  ...(params.maxDeliveries === undefined ? {} : { maxDeliveries: params.maxDeliveries }),
});

let doneKeys: string[] = [];
let started = 0;
let shuttingDown = false;

/** True for the first caller across the run's processes (an exclusive create of a marker file). */
function firstTime(marker: string): boolean {
  try {
    closeSync(openSync(join(params.ledgerDir, "..", marker), "wx"));
    return true;
  } catch {
    return false;
  }
}

/** What a `crash` payload does to this process. */
function crash(kind: NonNullable<ModePayload["crash"]>): void {
  switch (kind) {
    case "exit":
      process.exit(1);
      break;
    case "sigkill":
      process.kill(process.pid, "SIGKILL");
      break;
    case "throw-in-timer":
      setTimeout(() => {
        throw new Error("thrown from a timer callback");
      });
      break;
    case "unhandled-rejection":
      void Promise.reject(new Error("an un-awaited rejected promise"));
      break;
  }
}

worker.handle(defineJob<ModePayload>({ name: "reliability.chaos", queue: params.queue, maxAttempts: 25 }), async (payload, ctx) => {
  ledger.write("start", { id: payload.k, jobId: ctx.job.id, attempt: ctx.job.attempt, shuttingDown });
  started++;
  // Every start while few jobs ran (R6 and R4 wait for them); then the first of each 100 (R3, R7 at 200/s).
  if (started <= 100 || started % 100 === 0) send({ type: "started", t: Date.now(), count: started });
  if (payload.crash !== undefined) {
    crash(payload.crash);
    // The timer and rejection variants take effect on a later tick; give them one.
    await sleep(1_000);
  }
  if (payload.block !== undefined && (payload.blockOnce !== true || firstTime(`blocked-${payload.k}`))) {
    ledger.write("blocking", { id: payload.k, ms: payload.block });
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, payload.block);
  }
  try {
    await sleep(Math.min(payload.ms, params.capMs ?? Number.POSITIVE_INFINITY), undefined, { signal: ctx.signal });
  } catch (error) {
    ledger.write("aborted", { id: payload.k, reason: (ctx.signal.reason as Error | undefined)?.name });
    throw error;
  }
  ledger.write("done", { id: payload.k });
  doneKeys.push(payload.k);
});
worker.on("job.succeeded", (e) => ledger.write("ack", { id: keyOf(e.job) }));
worker.on("job.failed", (e) => ledger.write("failed", { id: keyOf(e.job), error: e.error.message, willRetry: e.willRetry }));
worker.on("job.lease-lost", (e) => ledger.write("lease-lost", { id: keyOf(e.job), error: e.error.message }));
worker.on("job.dead-lettered", (e) => ledger.write("dead-lettered", { id: keyOf(e.job), reason: e.reason, error: e.error.message }));
worker.on("error", (e) => ledger.write("worker-error", { id: keyOf(e.job), error: e.error.message }));

const progress = setInterval(() => {
  if (doneKeys.length === 0) return;
  send({ type: "done", t: Date.now(), keys: doneKeys });
  doneKeys = [];
}, 100);

// R7: samples after gc().
// Samples go to their own directory: the drain watches the ledgers for quiet, and samples never stop.
const stopSampler =
  params.sampleEveryMs === undefined
    ? undefined
    : startSampler(openLedger(join(params.ledgerDir, "..", "samples"), "worker"), params.sampleEveryMs);

/** Shutdown as an application does it (docs/concepts/shutdown.md), ending without `process.exit`. */
async function shutdown(signal: string): Promise<void> {
  const t = Date.now();
  ledger.write("sigterm", { signal, running: worker.running });
  clearInterval(progress);
  stopSampler?.();
  await worker.close(params.shutdownTimeoutMs === undefined ? {} : { timeout: params.shutdownTimeoutMs });
  ledger.write("worker-closed", { ms: Date.now() - t });
  await broker.close();
  if (doneKeys.length > 0) send({ type: "done", t: Date.now(), keys: doneKeys });
  ledger.write("closed-all", { ms: Date.now() - t, resources: process.getActiveResourcesInfo() });
  // The IPC channel is the harness's; without it, only what the library left could keep Node running.
  process.once("beforeExit", () => {
    ledger.write("exiting", { ms: Date.now() - t, resources: process.getActiveResourcesInfo() });
    ledger.close();
  });
  // Diagnostics if something still holds the event loop (unref'd: it keeps nothing alive itself).
  setTimeout(() => ledger.write("still-alive", { ms: Date.now() - t, resources: process.getActiveResourcesInfo() }), 3_000).unref();
  process.disconnect?.();
}

let signals = 0;
const onSignal = (signal: string): void => {
  signals++;
  if (signals === 1) {
    shuttingDown = true;
    shutdown(signal).catch((error: unknown) => {
      ledger.write("shutdown-error", { error: (error as Error)?.message });
      process.exitCode = 1;
    });
  } else {
    // Second signal: abort running jobs now (core shortens the deadline; still no ack of unfinished work).
    ledger.write("second-signal", { signal });
    void worker.close({ timeout: 0 });
  }
};
process.on("SIGTERM", onSignal);
process.on("SIGINT", onSignal);

async function start(): Promise<void> {
  try {
    await worker.start();
    ledger.write("ready");
    send({ type: "ready", t: Date.now() });
  } catch (error) {
    ledger.write("fatal", { error: (error as Error).message });
    send({ type: "fatal", t: Date.now(), message: (error as Error).message });
    process.exit(1);
  }
}

process.on("message", (message: ParentMessage | { readonly type: "go" }) => {
  if (message.type === "close") onSignal("close");
  if (message.type === "go") void start();
});

if (params.startOnGo === true) send({ type: "forked", t: Date.now() } as unknown as ChildMessage);
else await start();
