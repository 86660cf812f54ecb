/**
 * R10 — dead letters and requeue (RELIABILITY.md d.3), with core's real client, workers and admin
 * in this process against a private broker per adapter: D1 (fields of the one dead letter), D2
 * (requeue while two workers run), D3 (JetStream keeps nothing pending), D4 (RabbitMQ quorum
 * delivery limit), D5 (SQS maxReceiveCount backstop, only in its own crash-loop run).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { type Broker, createAdmin, createClient, createWorker, defineJob, NonRetryableError } from "@jobs/core";
import { type DeadLetter, decodeEnvelope, physicalQueue, priorityLevel } from "@jobs/core/adapter";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AdapterName, selectedAdapters, startTarget, type Target } from "../src/adapters.js";
import { config, TIMINGS } from "../src/config.js";
import { BrokerSet, queueName, Recorder, skipCase } from "../src/in-process.js";
import { bar, writeReport } from "../src/report.js";

const cfg = config().semantics;

/** Polls `read` until `ok` holds (broker state has no events), failing after `timeoutMs`. */
async function pollUntil<T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > end) throw new Error(`[reliability] timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

/** Dead letters the SQS RedrivePolicy moved (no failure record of core's): the backstop triggered. */
const redriven = (letters: readonly DeadLetter[]): number => letters.filter((d) => d.error.name === "RedrivePolicy").length;

/** Every dead letter of a logical queue, over its physical queues. */
async function deadLettersOf(broker: Broker, queue: string): Promise<DeadLetter[]> {
  const names = new Set([0, 1, 2, 3, 4].map((level) => physicalQueue(queue, level as 0, broker.capabilities)));
  const out: DeadLetter[] = [];
  for (const name of names) out.push(...(await broker.listDeadLetters(name, { limit: 10_000 })));
  return out;
}

describe.each(selectedAdapters())("R10 dead letters on %s", (adapter: AdapterName) => {
  let target: Target;
  /** SQS: dead letters the backstop moved during the normal runs (D1, D2). */
  let redrivenInNormalRuns = 0;
  let d1Queue = "";
  beforeAll(async () => {
    target = await startTarget(adapter, "r10");
  });
  afterAll(async () => {
    await target?.stop();
  });

  it("R10-D1 after maxAttempts 3 of an always-failing job: exactly one dead letter, fields complete", async () => {
    const set = new BrokerSet(target.spec);
    const rec = new Recorder();
    try {
      const job = defineJob<{ n: number; text: string }>({
        name: "r10.d1",
        queue: queueName("d1"),
        maxAttempts: 3,
        backoff: { type: "fixed", delay: 100 },
        timeout: 10_000,
      });
      d1Queue = job.queue;
      const worker = set.track(createWorker({ broker: set.open(), lease: TIMINGS.leaseMs, concurrency: 2 }));
      rec.watchWorker(worker, "w");
      worker.handle(job, (_p, ctx) => {
        rec.add({ kind: "start", id: ctx.job.id, attempt: ctx.job.attempt, source: "w" });
        throw new Error(`r10-d1 failure of attempt ${ctx.job.attempt}`);
      });
      await worker.start();
      const payload = { n: 7, text: "dead letter payload é ✓" };
      const producer = set.open();
      const enqueuedAt = Date.now();
      const { id } = await createClient({ broker: producer }).enqueue(job, payload);
      await rec.until(() => rec.of("job.dead-lettered", id).length > 0, 30_000, "D1 dead-lettered");
      await sleep(500); // a second dead letter or a fourth attempt would show now
      const views = await createAdmin({ broker: producer }).listDeadLetters(job.queue);
      const raw = await deadLettersOf(producer, job.queue);
      const view = views[0];
      const entry = raw.find((d) => d.key === view?.key);
      const env = entry === undefined ? undefined : decodeEnvelope(entry.body, Number.POSITIVE_INFINITY);
      const fields = {
        id: view?.id === id,
        name: view?.name === job.name,
        attempts: view?.attempt === 3,
        reason: view?.reason === "max-attempts",
        lastError: view?.error.message === "r10-d1 failure of attempt 3" && env?.lastError?.attempt === 3,
        firstTimestamp: env !== undefined && env.enqueuedAt >= enqueuedAt - 1_000 && env.enqueuedAt <= enqueuedAt + 1_000,
        lastTimestamp: view !== undefined && env !== undefined && view.failedAt >= env.enqueuedAt && view.failedAt <= Date.now(),
        payload: JSON.stringify(env?.payload) === JSON.stringify(payload),
      };
      if (adapter === "sqs") redrivenInNormalRuns += redriven(raw);
      const missing = Object.entries(fields)
        .filter(([, ok]) => !ok)
        .map(([k]) => k);
      const report = writeReport({
        test: "R10-D1",
        adapter,
        seed: 0,
        config: { maxAttempts: 3, backoffMs: 100 },
        figures: { executions: rec.of("start", id).length, deadLetters: views.length, fields, view },
        bars: [
          bar("dead letters of the job", views.length, "= 1", views.length === 1),
          bar("fields missing or wrong", missing.join(",") || "none", "none", missing.length === 0),
          bar("executions", rec.of("start", id).length, "= 3", rec.of("start", id).length === 3),
          bar("dead-lettered events", rec.of("job.dead-lettered", id).length, "= 1", rec.of("job.dead-lettered", id).length === 1),
        ],
      });
      expect(report.verdict).toBe("pass");
    } finally {
      await set.close();
    }
  });

  if (adapter !== "nats") skipCase("R10-D3", adapter, "JetStream (nats) only");
  else
    it("R10-D3 JetStream: after dead-lettering, the work stream has nothing pending", async () => {
      const set = new BrokerSet(target.spec);
      const nc = await connect({ servers: target.spec.url });
      try {
        const broker = set.open();
        const physical = physicalQueue(d1Queue, priorityLevel("normal"), broker.capabilities);
        const jsm = await jetstreamManager(nc);
        const stream = target.spec.namespace.toUpperCase().replace(/[^A-Z0-9_]/g, "_");
        const natsPrefix = target.spec.namespace.replace(/[^A-Za-z0-9_-]/g, "_");
        const consumer = await jsm.consumers.info(stream, `ready_${physical}`);
        const info = await jsm.streams.info(stream, { subjects_filter: `${natsPrefix}.${physical}.>` });
        const subjects = info.state.subjects ?? {};
        const ready = subjects[`${natsPrefix}.${physical}.ready`] ?? 0;
        const dead = subjects[`${natsPrefix}.${physical}.dead`] ?? 0;
        const report = writeReport({
          test: "R10-D3",
          adapter,
          seed: 0,
          figures: { numPending: consumer.num_pending, numAckPending: consumer.num_ack_pending, readyMessages: ready, deadMessages: dead },
          bars: [
            bar(
              "work consumer num_pending + num_ack_pending",
              consumer.num_pending + consumer.num_ack_pending,
              "= 0",
              consumer.num_pending + consumer.num_ack_pending === 0,
            ),
            bar("messages left on the ready subject", ready, "= 0", ready === 0),
            bar("messages on the dead subject", dead, "= 1", dead === 1),
          ],
        });
        expect(report.verdict).toBe("pass");
      } finally {
        await nc.close();
        await set.close();
      }
    });

  it("R10-D2 requeue of dead jobs while two workers run: each runs exactly once more", async () => {
    const set = new BrokerSet(target.spec);
    const rec = new Recorder();
    try {
      const job = defineJob<{ n: number }>({ name: "r10.d2", queue: queueName("d2"), maxAttempts: 1, timeout: 10_000 });
      let phase = 1;
      for (const name of ["a", "b"]) {
        const worker = set.track(createWorker({ broker: set.open(), lease: TIMINGS.leaseMs, concurrency: 10 }));
        rec.watchWorker(worker, name);
        worker.handle(job, (_p, ctx) => {
          rec.add({ kind: `start${phase}`, id: ctx.job.id, source: name });
          if (phase === 1) throw new NonRetryableError("r10-d2 first run fails");
          rec.add({ kind: "done", id: ctx.job.id, source: name });
        });
        await worker.start();
      }
      const producer = set.open();
      const admin = createAdmin({ broker: producer });
      const jobs = await createClient({ broker: producer }).enqueueMany(
        Array.from({ length: cfg.d2Jobs }, (_, n) => ({ job, payload: { n } })),
      );
      const ids = new Set(jobs.map((j) => j.id));
      const deadIds = (): number => new Set(rec.of("job.dead-lettered").map((e) => e.id)).size;
      await rec.until(() => deadIds() >= ids.size, 60_000, "D2 all dead");
      await pollUntil(
        () => admin.counts(job.queue),
        (c) => c.dead >= ids.size,
        30_000,
        "D2 dead counted",
      );
      phase = 2;
      const requeued = await admin.requeueDeadLetters(job.queue);
      const doneIds = (): number => new Set(rec.of("done").map((e) => e.id)).size;
      await rec.until(() => doneIds() >= ids.size, 60_000, "D2 all ran again");
      await sleep(1_000); // a duplicate would show now
      const second = rec.of("start2");
      const perId = new Map<string, number>();
      for (const e of second) perId.set(e.id as string, (perId.get(e.id as string) ?? 0) + 1);
      const duplicates = [...perId.values()].filter((n) => n > 1).length;
      const unknown = [...perId.keys()].filter((id) => !ids.has(id)).length;
      const counts = await admin.counts(job.queue);
      if (adapter === "sqs") redrivenInNormalRuns += redriven(await deadLettersOf(producer, job.queue));
      const report = writeReport({
        test: "R10-D2",
        adapter,
        seed: 0,
        config: { jobs: cfg.d2Jobs, workers: 2 },
        figures: {
          requeued,
          secondRuns: second.length,
          byWorker: { a: second.filter((e) => e.source === "a").length, b: second.filter((e) => e.source === "b").length },
          countsAfter: counts,
        },
        bars: [
          bar("requeued", requeued, `= ${ids.size}`, requeued === ids.size),
          bar("completions after requeue", doneIds(), `= ${ids.size}`, doneIds() === ids.size),
          bar("duplicates", duplicates, "= 0", duplicates === 0),
          bar("phantom ids", unknown, "= 0", unknown === 0),
          bar("dead letters left", counts.dead, "= 0", counts.dead === 0),
        ],
      });
      expect(report.verdict).toBe("pass");
    } finally {
      await set.close();
    }
  });

  if (adapter !== "rabbitmq") skipCase("R10-D4", adapter, "RabbitMQ only (quorum x-delivery-limit)");
  else
    it("R10-D4 RabbitMQ quorum x-delivery-limit: never taken in a normal run, the backstop in a crash loop, and what it moves is kept", async () => {
      // The adapter's default limit (20), above maxAttempts (3) and core's maxDeliveries (10).
      const deliveryLimit = 20;
      const quorum = { queueType: "quorum", deliveryLimit };
      const set = new BrokerSet(target.spec);
      const rec = new Recorder();
      const made: string[] = [];
      try {
        // Normal run: two workers, half the jobs always fail (3 attempts through the delay ladder), half succeed.
        const jobs = 20;
        const job = defineJob<{ n: number }>({
          name: "r10.d4",
          queue: queueName("d4"),
          maxAttempts: 3,
          backoff: { type: "fixed", delay: 100 },
          timeout: 10_000,
        });
        made.push(job.queue);
        for (const name of ["a", "b"]) {
          const worker = set.track(createWorker({ broker: set.open(quorum), lease: TIMINGS.leaseMs, concurrency: 5 }));
          rec.watchWorker(worker, name);
          worker.handle(job, ({ n }) => {
            if (n % 2 === 1) throw new Error(`r10-d4 job ${n} fails`);
            rec.add({ kind: "done", id: String(n), source: name });
          });
          await worker.start();
        }
        const producer = set.open(quorum);
        await createClient({ broker: producer }).enqueueMany(Array.from({ length: jobs }, (_, n) => ({ job, payload: { n } })));
        const deadIds = (): number => new Set(rec.of("job.dead-lettered").map((e) => e.id)).size;
        await rec.until(() => deadIds() >= jobs / 2 && rec.of("done").length >= jobs / 2, 60_000, "D4 normal run settled");
        const normal = await pollUntil(
          () => deadLettersOf(producer, job.queue),
          (l) => l.length >= jobs / 2,
          30_000,
          "D4 normal dead letters",
        );
        const backstopInNormalRun = normal.filter((l) => l.error.name === "DeliveryLimitError").length;
        const byCore = normal.filter((l) => l.reason === "max-attempts").length;

        // Crash loop: consumers take the message and never settle it, as workers dying before they record
        // anything would; every lease expiry returns it (basic.reject), and RabbitMQ counts each delivery.
        const loop = defineJob<{ n: number }>({ name: "r10.d4loop", queue: queueName("d4loop") });
        made.push(loop.queue);
        const { id } = await createClient({ broker: producer }).enqueue(loop, { n: 1 });
        const physical = physicalQueue(loop.queue, priorityLevel("normal"), producer.capabilities);
        const counts: number[] = [];
        const sub = await set.open(quorum).consume(physical, { prefetch: 1, leaseMs: 150 }, (d) => counts.push(d.deliveryCount));
        const letters = await pollUntil(
          () => producer.listDeadLetters(physical, { limit: 10 }),
          (l) => l.length > 0,
          60_000,
          "D4 backstop",
        );
        await sub.stop();
        const after = await producer.counts(physical);
        const letter = letters[0];
        let keptId: string | undefined;
        try {
          keptId = letter === undefined ? undefined : decodeEnvelope(letter.body, Number.POSITIVE_INFINITY).id;
        } catch {
          keptId = undefined;
        }
        const report = writeReport({
          test: "R10-D4",
          adapter,
          seed: 0,
          config: { queueType: "quorum", deliveryLimit, maxAttempts: 3, jobs },
          figures: {
            normalDeadLetters: normal.length,
            deadLetteredByCore: byCore,
            backstopInNormalRun,
            crashLoopDeliveries: counts.length,
            deliveryCounts: counts,
            crashLoopLetters: letters.map((l) => ({ reason: l.reason, error: l.error.name, failedAt: l.failedAt })),
            countsAfter: after,
          },
          bars: [
            bar("backstop triggered in the normal run", backstopInNormalRun, "= 0", backstopInNormalRun === 0),
            bar("failing jobs dead-lettered by core (max-attempts)", byCore, `= ${jobs / 2}`, byCore === jobs / 2),
            bar(
              "deliveries in the crash loop (limit N ⇒ N + 1)",
              counts.length,
              `= ${deliveryLimit + 1}`,
              counts.length === deliveryLimit + 1,
            ),
            bar(
              "dead letters the backstop moved",
              letters.length,
              "= 1",
              letters.length === 1 && letter?.error.name === "DeliveryLimitError",
            ),
            bar("reason", letter?.reason ?? "none", "crash-loop", letter?.reason === "crash-loop"),
            bar("the moved message is the job (not dropped)", keptId === id ? "same id" : String(keptId), "same id", keptId === id),
            bar("left in the work queue", after.waiting + after.active, "= 0", after.waiting + after.active === 0),
          ],
        });
        expect(report.verdict).toBe("pass");
      } finally {
        await set.close();
        // Delete what the case declared (the node is private, but the next case should not see it).
        const cleaner = set.open(quorum) as Broker & { deleteQueue(queue: string): Promise<void> };
        for (const queue of made)
          for (const level of [0, 1, 2, 3, 4] as const)
            await cleaner.deleteQueue(physicalQueue(queue, level, cleaner.capabilities)).catch(() => {});
        await set.close();
      }
    });

  if (adapter !== "sqs") skipCase("R10-D5", adapter, "SQS only (RedrivePolicy maxReceiveCount)");
  else
    it("R10-D5 SQS maxReceiveCount backstop: never in normal runs, triggers in a crash loop", async () => {
      const set = new BrokerSet(target.spec);
      try {
        // Crash loop: consumers take the message and never settle it, as dead workers would; each
        // lease (visibility) expiry is a receive. maxReceiveCount 2: the third receive moves it.
        const maxReceiveCount = 2;
        const queue = queueName("d5");
        const producer = set.open({ maxReceiveCount });
        const job = defineJob<{ n: number }>({ name: "r10.d5", queue });
        await createClient({ broker: producer }).enqueue(job, { n: 1 });
        const physical = physicalQueue(queue, priorityLevel("normal"), producer.capabilities);
        let receives = 0;
        for (let i = 0; i < 4; i++)
          await set.open({ maxReceiveCount }).consume(physical, { prefetch: 1, leaseMs: 1_000 }, () => receives++);
        const letters = await pollUntil(
          () => producer.listDeadLetters(physical, { limit: 10 }),
          (l) => l.length > 0,
          30_000,
          "D5 redrive",
        );
        const report = writeReport({
          test: "R10-D5",
          adapter,
          seed: 0,
          config: { maxReceiveCount },
          figures: { receives, redrivenInNormalRuns, crashLoopLetters: letters.map((l) => ({ reason: l.reason, error: l.error.name })) },
          bars: [
            bar("backstop triggered in normal runs (D1, D2)", redrivenInNormalRuns, "= 0", redrivenInNormalRuns === 0),
            bar("backstop triggered in the crash loop", redriven(letters), "= 1", redriven(letters) === 1),
            bar("reason", letters[0]?.reason ?? "none", "crash-loop", letters[0]?.reason === "crash-loop"),
          ],
        });
        expect(report.verdict).toBe("pass");
      } finally {
        await set.close();
      }
    });
});
