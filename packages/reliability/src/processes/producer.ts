/**
 * A producer process forked by a reliability test: core's real `createClient`, enqueuing chaos
 * jobs at full speed or a steady rate with a bound on pending enqueues. Each job gets an `intent`
 * line before `enqueue` and an `accepted` or `rejected{ambiguous, code}` line after it settles.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createClient, JobsError } from "@jobs/core";
import { createBroker, createStore } from "../adapters.js";
import { openLedger } from "../ledger.js";
import { prng, uniform } from "../random.js";
import { type ChaosPayload, type ChildMessage, chaosJob, type ParentMessage, type ProducerParams } from "./params.js";

const params = JSON.parse(process.argv[2] ?? "{}") as ProducerParams;
const ledger = openLedger(params.ledgerDir, "producer");
const send = (message: ChildMessage): void => {
  if (process.connected) process.send?.(message);
};
process.on("disconnect", () => process.exit(0));

const broker = createBroker(params.spec, params.brokerOptions ?? {});
broker.on("disconnected", (e) => ledger.write("disconnected", { error: e.error?.message }));
broker.on("reconnected", () => ledger.write("reconnected"));
broker.on("error", (e) => ledger.write("broker-error", { error: e.error.message }));
const store = params.store === undefined ? undefined : createStore(params.store);
store?.on("disconnected", (e) => ledger.write("store-disconnected", { error: e.error?.message }));
store?.on("reconnected", () => ledger.write("store-reconnected"));
store?.on("error", (e) => ledger.write("store-error", { error: e.error.message }));
const client = createClient({ broker, ...(store === undefined ? {} : { store }) });
const job = chaosJob(params.queue);
const rng = prng(params.seed);

let stopped = false;
process.on("message", (message: ParentMessage) => {
  if (message.type === "stop") stopped = true;
});

let inFlight = 0;
let slotFreed: (() => void) | undefined;
let acceptedKeys: string[] = [];
let rejected = 0;
const flush = (): void => {
  if (acceptedKeys.length === 0 && rejected === 0) return;
  send({ type: "accepted", t: Date.now(), keys: acceptedKeys, rejected });
  acceptedKeys = [];
  rejected = 0;
};
const progress = setInterval(flush, 100);

function enqueueOne(n: number): Promise<void> {
  const k = `${params.keyPrefix}${n}`;
  const payload: ChaosPayload = {
    k,
    ms: Math.round(uniform(rng, params.handlerMs[0], params.handlerMs[1])),
    ...(rng() < params.cpuFraction ? { cpu: params.cpuMs } : {}),
  };
  ledger.write("intent", { id: k });
  inFlight++;
  return client.enqueue(job, payload, { metadata: { k } }).then(
    (enqueued) => {
      // `duplicate`: the id had a record (or the broker's dedupe window had it) and nothing was published.
      ledger.write("accepted", { id: k, jobId: enqueued.id, ...(enqueued.duplicate ? { duplicate: true } : {}) });
      acceptedKeys.push(k);
    },
    (error: unknown) => {
      const code = JobsError.isInstance(error) ? error.code : "not-a-jobs-error";
      ledger.write("rejected", { id: k, ambiguous: code === "enqueue-outcome-unknown", code, error: (error as Error)?.message });
      rejected++;
    },
  );
}

/** How far behind its schedule the producer may fall and still catch up (ms). */
const CATCH_UP_MS = 250;
const startedAt = performance.now();
let nextDue = startedAt;
const pending = new Set<Promise<void>>();
for (let n = 0; n < params.count && !stopped; n++) {
  if (params.durationMs !== undefined && performance.now() - startedAt >= params.durationMs) break;
  if (params.ratePerSec !== undefined) {
    const wait = nextDue - performance.now();
    if (wait > 0) await sleep(wait);
  }
  while (inFlight >= params.maxInFlight) await new Promise<void>((resolve) => (slotFreed = resolve));
  if (params.ratePerSec !== undefined) {
    // The schedule absorbs timer lateness: each sleep of a few ms wakes late on a busy machine, and
    // restarting the schedule from "now" after every one of them lost that time for good (R2 ran at
    // 100-180 enqueues/s instead of 200, so its throughput compared the producer's jitter before and
    // after an outage, not the workers'). Steady still means steady: after a stall longer than
    // CATCH_UP_MS (every slot pending through an outage) it goes on at its rate instead of bursting.
    nextDue += 1000 / params.ratePerSec;
    if (performance.now() - nextDue > CATCH_UP_MS) nextDue = performance.now();
  }
  const p = enqueueOne(n).finally(() => {
    inFlight--;
    pending.delete(p);
    const wake = slotFreed;
    slotFreed = undefined;
    wake?.();
  });
  pending.add(p);
}
await Promise.all([...pending]);
clearInterval(progress);
flush();
ledger.write("finished");
send({ type: "finished", t: Date.now() });
await broker.close().catch(() => {});
await store?.close().catch(() => {});
ledger.close();
process.exit(0);
