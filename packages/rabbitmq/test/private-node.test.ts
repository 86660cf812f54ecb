/**
 * Cases that need a node of our own (a private node on free ports; the machine's node is never touched).
 *
 * Consumer timeout: RabbitMQ closes a channel whose oldest unacked delivery outlives `consumer_timeout`, putting every
 * unacked delivery of that channel back in the queue. A consumer therefore moves new deliveries to
 * a fresh channel once its oldest one is older than a tenth of the timeout: only the long job is
 * redelivered. Run on a private node whose timeout is 4 s (the machine's node keeps its 30 min).
 */
import { brokerUrlFromEnv } from "@jobs/conformance";
import { createClient, createWorker, defineJob } from "@jobs/core";
import type { Delivery } from "@jobs/core/adapter";
import { waitFor } from "@jobs/core/testing";
import { afterAll, describe, expect, it } from "vitest";
import { closeAll, startPrivateRabbit, Tracker, uniquePrefix } from "./support.js";

const CONSUMER_TIMEOUT_MS = 4_000;
const url = brokerUrlFromEnv("JOBS_RABBITMQ_URL");
const node = url === undefined ? undefined : await startPrivateRabbit({ consumerTimeoutMs: CONSUMER_TIMEOUT_MS });

interface Outcome {
  readonly redelivered: string[];
  readonly shortAckErrors: unknown[];
  readonly longCounts: number[];
  readonly longAckError: unknown;
  /** The consumer broker's config-warnings. */
  readonly warnings: string[];
}

/** A long job held past the timeout while short jobs (1 s each) keep arriving on the same consumer. */
async function scenario(tracker: Tracker, consumerTimeout: number): Promise<Outcome> {
  const [producer, consumer] = [tracker.broker(), tracker.broker({ consumerTimeout })];
  const queue = `ct${consumerTimeout}`;
  const seen = new Map<string, number>();
  const redelivered: string[] = [];
  const shortAckErrors: unknown[] = [];
  const longCounts: number[] = [];
  const longs: Delivery[] = [];
  const warnings: string[] = [];
  consumer.on("config-warning", (e) => warnings.push(e.message));
  try {
    await consumer.consume(queue, { prefetch: 5, leaseMs: 60_000 }, (d) => {
      const times = (seen.get(d.body) ?? 0) + 1;
      seen.set(d.body, times);
      if (d.body === "long") {
        longCounts.push(d.deliveryCount);
        longs.push(d);
        return;
      }
      if (times > 1) redelivered.push(d.body);
      setTimeout(() => d.ack().catch((e: unknown) => shortAckErrors.push(e)), 1_000);
    });
    await producer.publish(queue, [{ id: "long", body: "long", priority: 2, delayMs: 0, dedupe: true }]);
    await waitFor(() => longs.length === 1, { timeout: 5_000 });
    // Short jobs every 250 ms until the long one has been redelivered (its channel was closed), and a bit beyond.
    let i = 0;
    const started = performance.now();
    while (longs.length < 2 && performance.now() - started < 3 * CONSUMER_TIMEOUT_MS) {
      await producer.publish(queue, [{ id: `s${i}`, body: `short-${i++}`, priority: 2, delayMs: 0, dedupe: true }]);
      await new Promise((r) => setTimeout(r, 250));
    }
    await waitFor(() => longs.length >= 2, { timeout: 5_000, message: "the long job was never redelivered" });
    const longAckError = await (longs[0] as Delivery).ack().then(
      () => undefined,
      (e: unknown) => e,
    );
    await (longs[1] as Delivery).ack();
    await waitFor(async () => (await producer.counts(queue)).waiting === 0 && shortAckErrors.length + redelivered.length >= 0, {
      timeout: 5_000,
    });
    // Let every short job in flight finish (1 s each).
    await new Promise((r) => setTimeout(r, 1_500));
    return { redelivered, shortAckErrors, longCounts, longAckError, warnings };
  } finally {
    await closeAll([producer, consumer]);
  }
}

describe.skipIf(node === undefined)("consumer_timeout on a private node [needs JOBS_RABBITMQ_URL]", () => {
  const tracker = new Tracker(node?.url ?? "", uniquePrefix("ct"));
  afterAll(async () => {
    await tracker.cleanUp().catch(() => {});
    await node?.stop();
  });

  it("a job outliving consumer_timeout is redelivered alone: no short job in flight beside it is lost or repeated", async () => {
    const outcome = await scenario(tracker, CONSUMER_TIMEOUT_MS);
    expect(outcome.longCounts).toEqual([1, 2]);
    expect((outcome.longAckError as { code?: string })?.code).toBe("lease-lost");
    expect(outcome.redelivered).toEqual([]);
    expect(outcome.shortAckErrors).toEqual([]);
    // consumerTimeout matches the server's: nothing to say.
    expect(outcome.warnings).toEqual([]);
  }, 60_000);

  it("runs enqueue, delays, retries and dead letters as a user limited to ^jobs\\. resources (and amq.default for writes)", async () => {
    const n = node as NonNullable<typeof node>;
    n.ctl("add_user", "jobs-app", "app-secret");
    n.ctl("set_permissions", "-p", "/", "jobs-app", "^jobs\\.", "^(jobs\\..*|amq\\.default)$", "^jobs\\.");
    const limited = new Tracker(n.url.replace("guest:guest", "jobs-app:app-secret"), "jobs.");
    const [producer, consumer] = [limited.broker(), limited.broker()];
    try {
      const job = defineJob<{ n: number }>({
        name: "limited.job",
        queue: "limited",
        maxAttempts: 2,
        backoff: { type: "fixed", delay: 200 },
      });
      const worker = createWorker({ broker: consumer, concurrency: 2 });
      const ran: number[] = [];
      worker.handle(job, ({ n: value }, { job: info }) => {
        ran.push(value);
        if (value === 2 && info.attempt === 1) throw new Error("retry me once");
        if (value === 3) throw new Error("always fails");
      });
      await worker.start();
      const client = createClient({ broker: producer });
      await client.enqueue(job, { n: 1 }, { delay: "300ms" });
      await client.enqueue(job, { n: 2 });
      await client.enqueue(job, { n: 3 });
      await waitFor(async () => (await producer.counts("limited")).dead === 1 && ran.length === 5, { timeout: 10_000 });
      expect([...ran].sort()).toEqual([1, 2, 2, 3, 3]);
      await worker.close();
    } finally {
      await closeAll([producer, consumer]);
      await limited.cleanUp();
    }
  }, 60_000);

  it("negative control: without channel rotation (consumerTimeout 0) the short jobs in flight are redelivered too", async () => {
    const outcome = await scenario(tracker, 0);
    expect(outcome.longCounts).toEqual([1, 2]);
    expect(outcome.redelivered.length + outcome.shortAckErrors.length).toBeGreaterThan(0);
    // The channel close stated the server's value: the adapter says that consumerTimeout is wrong, once.
    expect(outcome.warnings).toHaveLength(1);
    expect(outcome.warnings[0]).toMatch(/consumer_timeout of 4000 ms, but the consumerTimeout option says it has none/);
  }, 60_000);
});
