/**
 * R8 — leases, long jobs, prefetch and delayed retries (RELIABILITY.md d.3), with core's real
 * client and workers in this process against a private broker per adapter. L1, L2, L3 and L5 run
 * side by side on their own queues; L6 blocks the event loop, so it runs alone afterwards.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { type Broker, createAdmin, createClient, createWorker, defineJob } from "@jobs/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AdapterName, type BrokerSpec, selectedAdapters, startTarget, type Target } from "../src/adapters.js";
import { config, TIMINGS, tier } from "../src/config.js";
import {
  BrokerSet,
  blockEventLoop,
  type DeliveryCounters,
  deliveryCounters,
  instrument,
  queueName,
  Recorder,
  skipCase,
} from "../src/in-process.js";
import { bar, writeReport } from "../src/report.js";

const cfg = config().semantics;
const LEASE = TIMINGS.leaseMs;

let unhandled = 0;
process.on("unhandledRejection", () => {
  unhandled++;
});

/** Adapter options that lower the native delay limit to `l5MaxDelayMs` (undefined: the adapter has none). */
function maxDelayOption(adapter: AdapterName): Record<string, unknown> | undefined {
  switch (adapter) {
    case "memory":
    case "nats":
      return { maxDelay: cfg.l5MaxDelayMs };
    case "rabbitmq":
      // The ladder holds unit × (2^levels − 1) = 2.8 s, declared as whole seconds: 2 s.
      return { delayUnit: "400ms", delayLevels: 3 };
    default:
      return undefined;
  }
}

interface Scenario {
  readonly rec: Recorder;
  readonly set: BrokerSet;
  /** A worker on its own broker connection, recording handler starts/ends and every event. */
  worker(
    name: string,
    handler: (attempt: number, id: string) => unknown,
    options?: { concurrency?: number; prefetch?: number; counters?: DeliveryCounters; broker?: Broker },
  ): Promise<ReturnType<typeof createWorker<undefined>>>;
}

function scenario(spec: BrokerSpec, job: ReturnType<typeof defineJob>): Scenario {
  const rec = new Recorder();
  const set = new BrokerSet(spec);
  return {
    rec,
    set,
    async worker(name, handler, options = {}) {
      const raw = options.broker ?? set.open();
      rec.watchBroker(raw, name);
      const broker = options.counters === undefined ? raw : instrument(raw, options.counters);
      const w = set.track(
        createWorker({
          broker,
          concurrency: options.concurrency ?? 2,
          prefetch: options.prefetch ?? options.concurrency ?? 2,
          lease: LEASE,
          shutdownTimeout: 1_000,
        }),
      );
      rec.watchWorker(w, name);
      w.handle(job, async (_payload, ctx) => {
        rec.add({ kind: "start", id: ctx.job.id, attempt: ctx.job.attempt, source: name });
        await handler(ctx.job.attempt, ctx.job.id);
        rec.add({ kind: "done", id: ctx.job.id, attempt: ctx.job.attempt, source: name });
      });
      await w.start();
      return w;
    },
  };
}

const errorsOf = (rec: Recorder): number => rec.of("error").length + rec.of("broker:error").length;

describe.each(selectedAdapters())("R8 leases on %s", (adapter) => {
  let target: Target;
  beforeAll(async () => {
    target = await startTarget(adapter, "r8");
  });
  afterAll(async () => {
    await target?.stop();
  });

  describe.concurrent("L1 L2 L3 L5 side by side", () => {
    it("R8-L1 a job of 3 leases with heartbeats is never redelivered", async ({ expect }) => {
      const runMs = cfg.l1LeaseMultiple * LEASE;
      const job = defineJob<{ n: number }>({ name: "r8.l1", queue: queueName("l1"), timeout: runMs * 4, maxAttempts: 1 });
      const s = scenario(target.spec, job);
      try {
        const counters = deliveryCounters();
        // Two workers: a redelivery would start on either.
        await s.worker("a", () => sleep(runMs), { counters });
        await s.worker("b", () => sleep(runMs), { counters });
        const { id } = await createClient({ broker: s.set.open() }).enqueue(job, { n: 1 });
        await s.rec.until(
          () => s.rec.of("job.succeeded", id).length > 0 || s.rec.of("job.dead-lettered").length > 0,
          runMs + 30_000,
          "L1 done",
        );
        const starts = s.rec.of("start", id);
        const report = writeReport({
          test: "R8-L1",
          adapter,
          seed: 0,
          config: { runMs, leaseMs: LEASE },
          figures: {
            starts: starts.length,
            runMs: s.rec.of("done", id)[0] === undefined ? null : (s.rec.of("done", id)[0]?.t ?? 0) - (starts[0]?.t ?? 0),
            leaseExtensions: counters.extensions,
            extensionFailures: counters.extensionFailures,
            redeliveries: counters.redeliveries,
          },
          bars: [
            bar("redeliveries", starts.length - 1, "= 0", starts.length === 1),
            bar("lease-lost events", s.rec.of("job.lease-lost").length, "= 0", s.rec.of("job.lease-lost").length === 0),
            bar("errors", errorsOf(s.rec), "= 0", errorsOf(s.rec) === 0),
            bar("completed", s.rec.of("done", id).length, "= 1", s.rec.of("done", id).length === 1),
          ],
        });
        expect(report.verdict).toBe("pass");
      } finally {
        await s.set.close();
      }
    });

    it("R8-L2 prefetched jobs waiting behind concurrency 1 do not expire", async ({ expect }) => {
      const job = defineJob<{ n: number }>({ name: "r8.l2", queue: queueName("l2"), timeout: 30_000, maxAttempts: 1 });
      const s = scenario(target.spec, job);
      try {
        const client = createClient({ broker: s.set.open() });
        const ids = (await client.enqueueMany(Array.from({ length: cfg.l2Jobs }, (_, n) => ({ job, payload: { n } })))).map((j) => j.id);
        const counters = deliveryCounters();
        await s.worker("a", () => sleep(cfg.l2JobMs), { concurrency: 1, prefetch: 50, counters });
        await s.rec.until(() => counters.deliveries >= cfg.l2Jobs || s.rec.of("done").length > 0, 15_000, "L2 prefetch").catch(() => {});
        // Then a competitor: it only gets what the first worker's leases let go.
        const other = deliveryCounters();
        await s.worker("b", () => sleep(cfg.l2JobMs), { concurrency: 1, prefetch: 1, counters: other });
        const doneIds = (): number => new Set(s.rec.of("done").map((e) => e.id)).size;
        await s.rec.until(() => doneIds() >= ids.length, cfg.l2Jobs * cfg.l2JobMs * 2 + 30_000, "L2 all done");
        // One more lease for late redeliveries to show.
        await sleep(LEASE);
        const dup = s.rec.duplicates();
        const waits = ids.map((id) => (s.rec.of("start", id)[0]?.t ?? 0) - (s.rec.entries[0]?.t ?? 0));
        const report = writeReport({
          test: "R8-L2",
          adapter,
          seed: 0,
          config: { jobs: cfg.l2Jobs, jobMs: cfg.l2JobMs, concurrency: 1, prefetch: 50, leaseMs: LEASE },
          figures: {
            heldByFirstWorker: counters.deliveries,
            startedBySecondWorker: s.rec.of("start").filter((e) => e.source === "b").length,
            maxWaitMs: Math.max(...waits),
            leaseExtensions: counters.extensions,
            redeliveries: counters.redeliveries + other.redeliveries,
          },
          bars: [
            bar("duplicates", dup.extra, "= 0", dup.extra === 0),
            bar("completed", doneIds(), `= ${ids.length}`, doneIds() === ids.length),
            bar("lease-lost events", s.rec.of("job.lease-lost").length, "= 0", s.rec.of("job.lease-lost").length === 0),
            bar("errors", errorsOf(s.rec), "= 0", errorsOf(s.rec) === 0),
            bar(
              "a held more than it could start within a lease",
              counters.deliveries,
              `> ${LEASE / cfg.l2JobMs}`,
              counters.deliveries > LEASE / cfg.l2JobMs,
            ),
          ],
        });
        expect(report.verdict).toBe("pass");
      } finally {
        await s.set.close();
      }
    });

    it("R8-L3 a retry backoff of 4 leases is held by the broker, one execution per attempt", async ({ expect }) => {
      const job = defineJob<{ n: number }>({
        name: "r8.l3",
        queue: queueName("l3"),
        timeout: 10_000,
        maxAttempts: 2,
        backoff: { type: "fixed", delay: cfg.l3BackoffMs },
      });
      const s = scenario(target.spec, job);
      try {
        const firstBroker = s.set.open();
        const first = await s.worker(
          "a",
          (attempt) => {
            if (attempt === 1) throw new Error("r8-l3 planned failure");
          },
          { broker: firstBroker },
        );
        const { id } = await createClient({ broker: s.set.open() }).enqueue(job, { n: 1 });
        await s.rec.until(() => s.rec.of("job.retrying", id).length > 0, 30_000, "L3 first failure");
        const retriedAt = s.rec.of("job.retrying", id)[0]?.t ?? 0;
        // The worker and its connection go away: only the broker can hold the delay now.
        await sleep(200); // let the retry's broker call finish (it follows the event)
        await first.close({ timeout: 1_000 });
        await firstBroker.close();
        const inspect = s.set.open();
        const heldCounts = await createAdmin({ broker: inspect }).counts(job.queue);
        await s.worker("b", () => undefined);
        await s.rec.until(() => s.rec.of("done", id).length > 0, cfg.l3BackoffMs + 30_000, "L3 second attempt");
        const secondStart = s.rec.of("start", id).find((e) => e.attempt === 2)?.t ?? 0;
        const early = secondStart - (retriedAt + cfg.l3BackoffMs);
        const tolerance = target.spec.adapter === "sqs" ? 1_000 : 100;
        const per = [1, 2].map((a) => s.rec.of("start", id).filter((e) => e.attempt === a).length);
        const report = writeReport({
          test: "R8-L3",
          adapter,
          seed: 0,
          config: { backoffMs: cfg.l3BackoffMs, leaseMs: LEASE },
          figures: { startsPerAttempt: per, delayErrorMs: early, countsWhileHeld: heldCounts },
          bars: [
            bar("executions of attempt 1", per[0] ?? 0, "= 1", per[0] === 1),
            bar("executions of attempt 2", per[1] ?? 0, "= 1", per[1] === 1),
            bar("attempt 2 after the backoff (ms from due)", early, `>= -${tolerance}`, early >= -tolerance),
            bar(
              "held after the worker closed",
              heldCounts.delayed + heldCounts.waiting + heldCounts.active,
              ">= 1",
              heldCounts.delayed + heldCounts.waiting + heldCounts.active >= 1,
            ),
            bar("errors", errorsOf(s.rec), "= 0", errorsOf(s.rec) === 0),
          ],
        });
        expect(report.verdict).toBe("pass");
      } finally {
        await s.set.close();
      }
    });

    it("R8-L5 a delay beyond the native limit starts on time, once", async ({ expect }) => {
      const option = maxDelayOption(adapter);
      // Its own namespace: a different delay ladder must not meet the other cases' topology.
      const spec: BrokerSpec = { ...target.spec, namespace: `${target.spec.namespace}l5` };
      const job = defineJob<{ n: number }>({ name: "r8.l5", queue: queueName("l5"), timeout: 10_000, maxAttempts: 1 });
      const s = scenario(spec, job);
      const lowered = (b: Broker): Broker =>
        option === undefined ? instrument(b, deliveryCounters(), { maxDelayMs: cfg.l5MaxDelayMs }) : b;
      try {
        const counters = deliveryCounters();
        await s.worker("a", () => undefined, { broker: lowered(s.set.open(option ?? {})), counters });
        const producer = lowered(s.set.open(option ?? {}));
        const { id, runAt } = await createClient({ broker: producer }).enqueue(job, { n: 1 }, { delay: cfg.l5DelayMs });
        await s.rec.until(() => s.rec.of("done", id).length > 0, cfg.l5DelayMs + 20_000, "L5 done");
        await sleep(1_000); // a duplicate would show within the lowered limit
        const start = s.rec.of("start", id)[0]?.t ?? 0;
        const lateness = start - runAt;
        const report = writeReport({
          test: "R8-L5",
          adapter,
          seed: 0,
          config: {
            maxDelayMs: cfg.l5MaxDelayMs,
            delayMs: cfg.l5DelayMs,
            via: option === undefined ? "capabilities.maxDelayMs override" : option,
          },
          figures: { latenessMs: lateness, deferrals: s.rec.of("job.deferred", id).length, deliveries: counters.deliveries },
          bars: [
            bar("start - runAt (ms)", lateness, ">= 0 and <= 1000", lateness >= 0 && lateness <= 1_000),
            bar("executions", s.rec.of("start", id).length, "= 1", s.rec.of("start", id).length === 1),
            bar("re-delayed on receipt", s.rec.of("job.deferred", id).length, ">= 1", s.rec.of("job.deferred", id).length >= 1),
            bar("errors", errorsOf(s.rec), "= 0", errorsOf(s.rec) === 0),
          ],
        });
        expect(report.verdict).toBe("pass");
      } finally {
        await s.set.close();
      }
    });
  });

  if (adapter !== "rabbitmq") skipCase("R8-L4", adapter, "RabbitMQ only (consumer_timeout)");
  else if (tier() !== "B") skipCase("R8-L4", adapter, "tier B only (consumer_timeout 20 s, 30-s job)");
  else
    it("R8-L4 a job longer than consumer_timeout: the broker closes its channel, the consumer resumes within 5 s, other jobs drain", async () => {
      const timeoutMs = 20_000;
      const node = await startTarget("rabbitmq", "r8l4", { rabbitConsumerTimeoutMs: timeoutMs });
      const long = defineJob<{ n: number }>({ name: "r8.l4.long", queue: queueName("l4"), timeout: 60_000, maxAttempts: 1 });
      const short = defineJob<{ n: number }>({ name: "r8.l4.short", queue: long.queue, timeout: 10_000, maxAttempts: 1 });
      const rec = new Recorder();
      const set = new BrokerSet(node.spec);
      try {
        const broker = set.open({ consumerTimeout: timeoutMs });
        rec.watchBroker(broker, "w");
        const worker = set.track(createWorker({ broker, concurrency: 4, lease: LEASE, shutdownTimeout: 1_000 }));
        rec.watchWorker(worker, "w");
        worker.handle(long, async (_p, ctx) => {
          rec.add({ kind: "start", id: ctx.job.id, attempt: ctx.job.attempt, source: "long" });
          await sleep(cfg.l4JobMs, undefined, { signal: ctx.signal }).catch(() => {});
        });
        worker.handle(short, async (_p, ctx) => {
          rec.add({ kind: "start", id: ctx.job.id, source: "short" });
          await sleep(200);
          rec.add({ kind: "done", id: ctx.job.id, source: "short" });
        });
        await worker.start();
        const client = createClient({ broker: set.open({ consumerTimeout: timeoutMs }) });
        const { id } = await client.enqueue(long, { n: 0 });
        await s8until(rec, () => rec.of("start", id).length > 0, 10_000);
        const shortIds: string[] = [];
        // Short jobs every 500 ms until the long one was handed out again (or 2 × consumer_timeout).
        const stopAt = Date.now() + 2 * timeoutMs;
        while (rec.of("start", id).length < 2 && Date.now() < stopAt) {
          shortIds.push((await client.enqueue(short, { n: shortIds.length })).id);
          await sleep(500);
        }
        for (let i = 0; i < 10; i++) {
          shortIds.push((await client.enqueue(short, { n: shortIds.length })).id);
          await sleep(500);
        }
        const doneShort = (): number => new Set(rec.of("done").map((e) => e.id)).size;
        // Not drained in 30 s is a failed bar in the report below, with the figures, not a bare timeout.
        await s8until(rec, () => doneShort() >= shortIds.length, 30_000).catch(() => {});
        const starts = rec
          .of("start")
          .filter((e) => e.source === "short")
          .map((e) => e.t);
        let maxGap = 0;
        for (let i = 1; i < starts.length; i++) maxGap = Math.max(maxGap, (starts[i] as number) - (starts[i - 1] as number));
        const longStarts = rec.of("start", id);
        const report = writeReport({
          test: "R8-L4",
          adapter,
          seed: 0,
          config: { consumerTimeoutMs: timeoutMs, jobMs: cfg.l4JobMs },
          figures: {
            longStarts: longStarts.map((e) => e.t - (longStarts[0]?.t ?? 0)),
            shortJobs: shortIds.length,
            maxGapMs: maxGap,
            leaseLost: rec.of("job.lease-lost").length,
            brokerEvents: rec.entries.filter((e) => e.kind.startsWith("broker:")).map((e) => e.kind),
          },
          bars: [
            bar("long job handed out again after the channel closed", longStarts.length, ">= 2", longStarts.length >= 2),
            bar("longest pause of short jobs (ms)", maxGap, "<= 5500", maxGap <= 5_500),
            bar("short jobs drained", doneShort(), `= ${shortIds.length}`, doneShort() === shortIds.length),
          ],
        });
        expect(report.verdict).toBe("pass");
      } finally {
        await set.close();
        await node.stop();
      }
    });

  it("R8-L6 a lease lost for real (event loop blocked 8 s): lease-lost, stale settle refused quietly, one more execution", async () => {
    const job = defineJob<{ n: number }>({ name: "r8.l6", queue: queueName("l6"), timeout: 60_000, maxAttempts: 1 });
    const s = scenario(target.spec, job);
    const before = unhandled;
    try {
      let blocked = false;
      const handler = (): void => {
        if (blocked) return;
        blocked = true;
        blockEventLoop(cfg.l6BlockMs);
      };
      await s.worker("a", handler);
      await s.worker("b", handler);
      const { id } = await createClient({ broker: s.set.open() }).enqueue(job, { n: 1 });
      await s.rec
        .until(
          () => s.rec.of("done", id).length >= 2 && s.rec.of("job.lease-lost", id).length > 0,
          cfg.l6BlockMs + 4 * LEASE + 10_000,
          "L6 second execution and lease-lost",
        )
        .catch(() => {});
      await sleep(LEASE); // anything more would show now
      const starts = s.rec.of("start", id).length;
      const report = writeReport({
        test: "R8-L6",
        adapter,
        seed: 0,
        config: { blockMs: cfg.l6BlockMs, leaseMs: LEASE },
        figures: {
          starts,
          leaseLost: s.rec.of("job.lease-lost", id).length,
          errors: s.rec.of("error").map((e) => e.data),
          brokerEvents: s.rec.entries.filter((e) => e.kind.startsWith("broker:")).map((e) => e.kind),
        },
        bars: [
          bar("executions", starts, "= 2", starts === 2),
          bar("lease-lost emitted", s.rec.of("job.lease-lost", id).length, ">= 1", s.rec.of("job.lease-lost", id).length >= 1),
          bar("error events", s.rec.of("error").length, "= 0", s.rec.of("error").length === 0),
          bar("unhandled rejections", unhandled - before, "= 0", unhandled === before),
        ],
      });
      expect(report.verdict).toBe("pass");
    } finally {
      await s.set.close();
    }
  });
});

/** Waits on the recorder (L4 helper). */
function s8until(rec: Recorder, check: () => boolean, timeoutMs: number): Promise<void> {
  return rec.until(check, timeoutMs, "R8-L4 condition");
}
