/**
 * R9 — enqueue outcome semantics and idempotency, the in-process cases (RELIABILITY.md d.3): E2
 * (same id again ⇒ at most one job per id in the dedupe window), E3 (a queue that does not exist or
 * was deleted ⇒ rejection, never a false "accepted"), E5 (bulk enqueue: exact per-item outcomes;
 * SQS batches split by bytes). E1 and E4 (proxy resets, broker down) live with the chaos tests.
 */
import { DeleteQueueCommand, ListQueuesCommand, SQSClient } from "@aws-sdk/client-sqs";
import {
  type Broker,
  BulkEnqueueError,
  type BulkItemOutcome,
  createAdmin,
  createClient,
  createWorker,
  defineJob,
  type EnqueueItem,
  InvalidOptionsError,
  JobsError,
  JobValidationError,
  PayloadTooLargeError,
} from "@jobs/core";
import { physicalQueue, priorityLevel } from "@jobs/core/adapter";
import type { RabbitmqBroker } from "@jobs/rabbitmq";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AdapterName, type BrokerSpec, SQS_CREDENTIALS, selectedAdapters, startTarget, type Target } from "../src/adapters.js";
import { config, TIMINGS } from "../src/config.js";
import { BrokerSet, queueName, Recorder, skipCase } from "../src/in-process.js";
import { type Bar, bar, writeReport } from "../src/report.js";

const cfg = config().semantics;

/** Runs a worker for `job` on its own broker, recording starts; returns when it consumes. */
async function recordingWorker(set: BrokerSet, rec: Recorder, job: ReturnType<typeof defineJob>, broker?: Broker): Promise<void> {
  const worker = set.track(createWorker({ broker: broker ?? set.open(), lease: TIMINGS.leaseMs, concurrency: 20 }));
  rec.watchWorker(worker, "w");
  worker.handle(job, (_p, ctx) => {
    rec.add({ kind: "start", id: ctx.job.id, source: "w" });
  });
  await worker.start();
}

/** Whether an outcome of an enqueue is a definite, typed rejection (nothing stored). */
const definite = (e: unknown): boolean => JobsError.isInstance(e) && e.code !== "enqueue-outcome-unknown";

describe.each(selectedAdapters())("R9 enqueue outcomes on %s", (adapter: AdapterName) => {
  let target: Target;
  beforeAll(async () => {
    target = await startTarget(adapter, "r9");
  });
  afterAll(async () => {
    await target?.stop();
  });

  // ---- E2 ----------------------------------------------------------------------------------
  // SQS dedupes only on FIFO queues: E2 runs there with `fifo: true` (its own namespace).
  const e2Options: Record<string, unknown> = adapter === "sqs" ? { fifo: true } : {};
  if (adapter === "rabbitmq") {
    skipCase("R9-E2", adapter, "capability dedupe absent (dedupeWindowMs 0: RabbitMQ needs a store)");
    skipCase("R9-E2b", adapter, "capability dedupe absent (dedupeWindowMs 0: RabbitMQ needs a store)");
  }
  if (adapter === "sqs")
    skipCase(
      "R9-E2b",
      adapter,
      "emulator fidelity gap: local-aws-sqs 2.0.2 dedupes only against messages still in the queue (its setRecord searches live records), so an id re-sent after its job was deleted is stored again; real SQS FIFO keeps a MessageDeduplicationId 5 min",
    );
  if (adapter !== "rabbitmq")
    it("R9-E2 the same id enqueued again (concurrently, then after completion) runs at most once per id", async () => {
      const spec: BrokerSpec = adapter === "sqs" ? { ...target.spec, namespace: `${target.spec.namespace}f` } : target.spec;
      const set = new BrokerSet(spec);
      const rec = new Recorder();
      try {
        const producer = set.open(e2Options);
        const window = producer.capabilities.dedupeWindowMs;
        const job = defineJob<{ n: number }>({ name: "r9.e2", queue: queueName("e2"), maxAttempts: 1 });
        await recordingWorker(set, rec, job, set.open(e2Options));
        const client = createClient({ broker: producer });
        const started = Date.now();
        const ids = Array.from({ length: cfg.e2Jobs }, (_, n) => `r9-e2-${n}-${started.toString(36)}`);
        // Both copies at once: one is stored, the other reported duplicate.
        const pairs = await Promise.all(
          ids.map((id, n) => Promise.all([client.enqueue(job, { n }, { id }), client.enqueue(job, { n }, { id })])),
        );
        const duplicatePairs = pairs.filter(([a, b]) => a.duplicate !== b.duplicate).length;
        const startedIds = (): number => new Set(rec.of("start").map((e) => e.id)).size;
        await rec.until(() => startedIds() >= ids.length, 60_000, "E2 all ran");
        // Once more, after they ran, still inside the window (not on the SQS emulator: see E2b's skip).
        const after = adapter !== "sqs";
        const again = after ? await Promise.all(ids.map((id, n) => client.enqueue(job, { n }, { id }))) : [];
        const againDuplicate = again.filter((r) => r.duplicate).length;
        // Anything stored by mistake would run within a few lease periods.
        await new Promise((r) => setTimeout(r, 3_000));
        const counts = await createAdmin({ broker: producer }).counts(job.queue);
        const dup = rec.duplicates();
        const elapsed = Date.now() - started;
        const common: Bar[] = [
          bar("duplicate executions by id", dup.extra, "= 0", dup.extra === 0),
          bar("ids completed", startedIds(), `= ${ids.length}`, startedIds() === ids.length),
          bar("left waiting", counts.waiting + counts.delayed, "= 0", counts.waiting + counts.delayed === 0),
          bar("run inside the dedupe window (ms)", elapsed, `< ${window}`, elapsed < window),
        ];
        const report = writeReport({
          test: "R9-E2",
          adapter,
          seed: 0,
          config: { jobs: cfg.e2Jobs, dedupeWindowMs: window, options: e2Options },
          figures: { executions: rec.of("start").length, duplicatePairs, countsAfter: counts, elapsedMs: elapsed },
          bars: [
            bar("concurrent pairs with exactly one duplicate", duplicatePairs, `= ${ids.length}`, duplicatePairs === ids.length),
            ...common,
          ],
        });
        const reportAfter = after
          ? writeReport({
              test: "R9-E2b",
              adapter,
              seed: 0,
              config: { jobs: cfg.e2Jobs, dedupeWindowMs: window },
              figures: { againDuplicate, executions: rec.of("start").length },
              bars: [
                bar("re-enqueues after completion reported duplicate", againDuplicate, `= ${ids.length}`, againDuplicate === ids.length),
                ...common,
              ],
            })
          : report;
        expect(reportAfter.verdict).toBe("pass");
        expect(report.verdict).toBe("pass");
      } finally {
        await set.close();
      }
    });

  // ---- E3 ----------------------------------------------------------------------------------
  if (adapter === "memory" || adapter === "redis")
    skipCase("R9-E3", adapter, "queues are created by the first publish: there is no missing or deleted queue to publish to");
  else
    it("R9-E3 publish to a queue that does not exist or was deleted: rejected, never a false accepted", async () => {
      const set = new BrokerSet(target.spec);
      const rec = new Recorder();
      const outcomes: Record<string, string> = {};
      const bars: Bar[] = [];
      const classify = async (p: Promise<unknown>): Promise<{ kind: "accepted" | "definite" | "ambiguous"; code: string }> => {
        try {
          await p;
          return { kind: "accepted", code: "" };
        } catch (error) {
          return { kind: definite(error) ? "definite" : "ambiguous", code: (error as { code?: string }).code ?? String(error) };
        }
      };
      try {
        const job = defineJob<{ n: number }>({ name: "r9.e3", queue: queueName("e3"), maxAttempts: 1 });
        const level = priorityLevel("normal");
        // (a) never existed, with the adapter told not to create queues.
        if (adapter === "rabbitmq" || adapter === "sqs") {
          const strict = set.open(adapter === "rabbitmq" ? { declare: false } : { queues: "verify" });
          const missing = defineJob<{ n: number }>({ name: "r9.e3m", queue: queueName("e3missing"), maxAttempts: 1 });
          const r = await classify(createClient({ broker: strict }).enqueue(missing, { n: 0 }));
          outcomes.missing = `${r.kind} ${r.code}`;
          bars.push(bar("missing queue: accepted", r.kind === "accepted" ? 1 : 0, "= 0", r.kind !== "accepted"));
          bars.push(
            bar(
              "missing queue: rejection is definite and typed",
              r.code,
              "unknown-queue",
              r.kind === "definite" && r.code === "unknown-queue",
            ),
          );
        }
        // (b) deleted after the producer had used it (its declaration or URL is cached).
        const producer = set.open();
        const client = createClient({ broker: producer });
        await client.enqueue(job, { n: 1 });
        const physical = physicalQueue(job.queue, level, producer.capabilities);
        await deleteQueue(adapter, target, set, physical);
        const r = await classify(client.enqueue(job, { n: 2 }));
        outcomes.deleted = `${r.kind} ${r.code}`;
        if (r.kind === "accepted") {
          // The adapter re-created the queue: then the job must really be there and run.
          await recordingWorker(set, rec, job);
          await rec.until(() => rec.of("start").length > 0, 20_000, "E3 re-created queue delivers").catch(() => {});
          bars.push(bar("deleted queue: accepted but not stored", rec.of("start").length === 0 ? 1 : 0, "= 0", rec.of("start").length > 0));
        } else {
          bars.push(
            bar(
              "deleted queue: rejection is definite and typed",
              r.code,
              "unknown-queue",
              r.kind === "definite" && r.code === "unknown-queue",
            ),
          );
        }
        const report = writeReport({ test: "R9-E3", adapter, seed: 0, figures: { outcomes }, bars });
        expect(report.verdict).toBe("pass");
      } finally {
        await set.close();
      }
    });

  // ---- E5 ----------------------------------------------------------------------------------
  it("R9-E5 bulk enqueue with 3 invalid items: exact per-item outcomes; then a byte-heavy bulk is split and stored whole", async () => {
    const set = new BrokerSet(target.spec);
    const rec = new Recorder();
    try {
      const producer = set.open();
      const client = createClient({ broker: producer });
      const job = defineJob<{ n: number; pad?: string; bad?: unknown }>({ name: "r9.e5", queue: queueName("e5"), maxAttempts: 1 });
      const limit = producer.capabilities.maxPayloadBytes;
      // Invalid: a payload that is not JSON, one over the size limit, and a bad option.
      const invalid = new Map<number, new (...args: never[]) => Error>([
        [17, JobValidationError],
        [50, PayloadTooLargeError],
        [83, InvalidOptionsError],
      ]);
      const items: EnqueueItem[] = Array.from({ length: cfg.e5Items }, (_, n) => {
        if (n === 17) return { job, payload: { n, bad: () => 1 } } as EnqueueItem;
        if (n === 50) return { job, payload: { n, pad: "x".repeat(limit + 1) } } as EnqueueItem;
        if (n === 83) return { job, payload: { n }, options: { maxAttempts: 0 } } as EnqueueItem;
        return { job, payload: { n } } as EnqueueItem;
      });
      let outcomes: readonly BulkItemOutcome[] = [];
      try {
        await client.enqueueMany(items);
      } catch (error) {
        if (error instanceof BulkEnqueueError) outcomes = error.outcomes;
        else throw error;
      }
      const wrong = items
        .map((_, i) => {
          const o = outcomes[i];
          const want = invalid.get(i);
          if (want === undefined) return o?.status === "not-sent" ? undefined : i;
          return o?.status === "rejected" && o.error instanceof want ? undefined : i;
        })
        .filter((i) => i !== undefined);
      const countsAfterInvalid = await createAdmin({ broker: producer }).counts(job.queue);
      // The valid items again, each big enough that ten of them exceed an SQS batch's 1 MiB.
      const heavy: EnqueueItem[] = items
        .map((_, n) => n)
        .filter((n) => !invalid.has(n))
        .map((n) => ({ job, payload: { n, pad: "y".repeat(cfg.e5PayloadBytes) } }) as EnqueueItem);
      await recordingWorker(set, rec, job);
      const accepted = await client.enqueueMany(heavy);
      const ids = new Set(accepted.map((j) => j.id));
      const ran = (): number => new Set(rec.of("start").map((e) => e.id)).size;
      await rec.until(() => ran() >= ids.size, 60_000, "E5 all ran");
      await new Promise((r) => setTimeout(r, 1_000));
      const dup = rec.duplicates();
      const report = writeReport({
        test: "R9-E5",
        adapter,
        seed: 0,
        config: { items: cfg.e5Items, invalidAt: [...invalid.keys()], heavyPayloadBytes: cfg.e5PayloadBytes },
        figures: {
          outcomes: outcomes.length,
          statuses: Object.fromEntries(["rejected", "not-sent", "accepted"].map((k) => [k, outcomes.filter((o) => o.status === k).length])),
          countsAfterInvalid,
          heavyBytes: heavy.length * cfg.e5PayloadBytes,
        },
        bars: [
          bar("per-item outcomes that differ from expected", wrong.length, "= 0", outcomes.length === items.length && wrong.length === 0),
          bar(
            "stored from the rejected bulk",
            countsAfterInvalid.waiting + countsAfterInvalid.delayed,
            "= 0",
            countsAfterInvalid.waiting + countsAfterInvalid.delayed === 0,
          ),
          bar("heavy bulk accepted", accepted.length, `= ${heavy.length}`, accepted.length === heavy.length && ids.size === heavy.length),
          bar("heavy bulk completed", ran(), `= ${heavy.length}`, ran() === heavy.length),
          bar("duplicates", dup.extra, "= 0", dup.extra === 0),
        ],
      });
      expect(report.verdict).toBe("pass");
    } finally {
      await set.close();
    }
  });
});

/** Deletes a physical queue behind the producer's back, with the broker's own tools. */
async function deleteQueue(adapter: AdapterName, target: Target, set: BrokerSet, physical: string): Promise<void> {
  if (adapter === "rabbitmq") {
    await (set.open() as RabbitmqBroker).deleteQueue(physical);
  } else if (adapter === "sqs") {
    const sqs = new SQSClient({ endpoint: target.spec.url, region: "us-east-1", credentials: SQS_CREDENTIALS });
    try {
      const list = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: `${target.spec.namespace}-${physical}` }));
      for (const url of list.QueueUrls ?? []) await sqs.send(new DeleteQueueCommand({ QueueUrl: url }));
    } finally {
      sqs.destroy();
    }
  } else if (adapter === "nats") {
    const nc = await connect({ servers: target.spec.url });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(target.spec.namespace.toUpperCase().replace(/[^A-Z0-9_]/g, "_"));
    } finally {
      await nc.close();
    }
  }
}
