/**
 * A worker process forked by a reliability test: core's real `createWorker` on a broker built from
 * the `BrokerSpec` in argv (and the Redis store of its `StoreSpec`, when given), with a handler that writes `start` first and `done` last to this
 * process's ledger. Library events go to the ledger too; progress goes to the orchestrator by IPC.
 * It exits when the orchestrator asks, or when the orchestrator goes away (IPC disconnect).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createWorker, type JobInfo } from "@jobs/core";
import { createBroker, createStore } from "../adapters.js";
import { openLedger } from "../ledger.js";
import { type ChaosPayload, type ChildMessage, chaosJob, type ParentMessage, type WorkerParams } from "./params.js";
import { ackBeforeHandle, recordReceives } from "./wrappers.js";

const params = JSON.parse(process.argv[2] ?? "{}") as WorkerParams;
const ledger = openLedger(params.ledgerDir, "worker");
const send = (message: ChildMessage): void => {
  if (process.connected) process.send?.(message);
};
process.on("disconnect", () => process.exit(0));

const keyOf = (job: JobInfo | undefined): string | undefined => {
  const k = job?.metadata?.k;
  return typeof k === "string" ? k : undefined;
};

let broker = createBroker(params.spec, params.brokerOptions ?? {});
if (params.wrap === "ackBeforeHandle") broker = ackBeforeHandle(broker);
if (params.recordReceives === true) broker = recordReceives(broker, (kind, fields) => ledger.write(kind, fields));
broker.on("disconnected", (e) => ledger.write("disconnected", { error: e.error?.message }));
broker.on("reconnected", () => ledger.write("reconnected"));
broker.on("error", (e) => ledger.write("broker-error", { error: e.error.message }));

const store = params.store === undefined ? undefined : createStore(params.store);
store?.on("disconnected", (e) => ledger.write("store-disconnected", { error: e.error?.message }));
store?.on("reconnected", () => ledger.write("store-reconnected"));
store?.on("error", (e) => ledger.write("store-error", { error: e.error.message }));

const worker = createWorker({
  broker,
  ...(store === undefined ? {} : { store }),
  concurrency: params.concurrency,
  prefetch: params.prefetch,
  lease: params.leaseMs,
});

let started = 0;
let doneKeys: string[] = [];
let firstStartSent = false;

/** Burns CPU for `ms` (R1's 1 % of jobs that are not purely I/O). */
function burn(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy on purpose
  }
}

worker.handle(chaosJob(params.queue), async (payload: ChaosPayload, ctx) => {
  ledger.write("start", { id: payload.k, jobId: ctx.job.id, attempt: ctx.job.attempt });
  started++;
  if (!firstStartSent) {
    firstStartSent = true;
    send({ type: "started", t: Date.now(), count: started });
  }
  await sleep(payload.ms);
  if (payload.cpu !== undefined && payload.cpu > 0) burn(payload.cpu);
  ledger.write("done", { id: payload.k });
  doneKeys.push(payload.k);
});
// Core emits job.succeeded once the job is settled: the broker acked it and, with a store, its record
// says `succeeded` first. The checker reads it as the ack of the execution, and a later start of the
// same key as a finished job run again (`finishedThenRunAgain`).
worker.on("job.succeeded", (e) => ledger.write("succeeded", { id: keyOf(e.job) }));
worker.on("job.failed", (e) => ledger.write("failed", { id: keyOf(e.job), error: e.error.message, willRetry: e.willRetry }));
worker.on("job.lease-lost", (e) => ledger.write("lease-lost", { id: keyOf(e.job), error: e.error.message }));
worker.on("job.dead-lettered", (e) => ledger.write("dead-lettered", { id: keyOf(e.job), reason: e.reason, error: e.error.message }));
worker.on("error", (e) => ledger.write("worker-error", { id: keyOf(e.job), error: e.error.message }));

// Progress in batches: one IPC message per 100 ms at most.
const progress = setInterval(() => {
  if (doneKeys.length === 0) return;
  send({ type: "done", t: Date.now(), keys: doneKeys });
  doneKeys = [];
}, 100);

process.on("message", (message: ParentMessage) => {
  if (message.type !== "close") return;
  clearInterval(progress);
  void (async () => {
    await worker.close({ timeout: 5_000 });
    await broker.close();
    await store?.close();
    if (doneKeys.length > 0) send({ type: "done", t: Date.now(), keys: doneKeys });
    ledger.write("closed");
    ledger.close();
    process.exit(0);
  })();
});

try {
  await worker.start();
  ledger.write("ready");
  send({ type: "ready", t: Date.now() });
} catch (error) {
  ledger.write("fatal", { error: (error as Error).message });
  send({ type: "fatal", t: Date.now(), message: (error as Error).message });
  process.exit(1);
}
