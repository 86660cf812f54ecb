/**
 * Fusion of the Redis broker with a Redis store on the same server (src/fusion.ts): the fetch
 * claims each recorded delivery's record, and finishAndAck writes the finish and acks in one call.
 */
import { brokerUrlFromEnv, startPrivateRedis } from "@jobs/conformance";
import { createClient, createWorker, defineJob } from "@jobs/core";
import { type Delivery, type Envelope, encodeEnvelope } from "@jobs/core/adapter";
import { waitFor } from "@jobs/core/testing";
import { afterAll, describe, expect, it } from "vitest";
import { createRedisBroker, createRedisStore, type RedisBroker, type RedisStore } from "../src/index.js";
import { deleteKeys } from "./support.js";

const found = brokerUrlFromEnv("JOBS_REDIS_URL");
const url = found ?? "redis://127.0.0.1:6379";
const prefix = `jobs-fusion-${process.pid}-${Date.now().toString(36)}`;
let n = 0;

afterAll(async () => {
  if (found === undefined) return;
  await deleteKeys(url, prefix);
  for (let i = 1; i <= n; i++) await deleteKeys(url, `${prefix}-s${i}`);
});

/** A broker and a store on `storeUrl` (the broker's server by default), closed after the test. */
function pair(storeUrl = url): { broker: RedisBroker; store: RedisStore; queue: string; close: () => Promise<void> } {
  n++;
  const broker = createRedisBroker({ url, prefix });
  const store = createRedisStore({ url: storeUrl, prefix: `${prefix}-s${n}` });
  return {
    broker,
    store,
    queue: `fusion-${n}`,
    close: async () => {
      await broker.close();
      await store.close();
    },
  };
}

/** Inserts the record of a new job and publishes its message (generation 1), as a client with the store does. */
async function recordedJob(broker: RedisBroker, store: RedisStore, queue: string): Promise<Envelope> {
  const now = Date.now();
  // In the order core writes the fields: the payload last.
  const envelope: Envelope = {
    v: 1,
    id: crypto.randomUUID(),
    name: "fused",
    queue,
    attempt: 1,
    maxAttempts: 3,
    priority: "normal",
    enqueuedAt: now,
    runAt: now,
    timeout: 30_000,
    gen: 1,
    payload: { n: 1 },
  };
  const { payload: _, v: __, ...meta } = envelope;
  await store.insert([{ ...meta, status: "waiting", tags: [], payloadJson: '{"n":1}', gen: 1 }]);
  await broker.publish(queue, [{ id: envelope.id, body: encodeEnvelope(envelope), priority: 2, delayMs: 0, dedupe: false }]);
  return envelope;
}

/** The first delivery of `queue` for a consumer asking for claims in `store`. */
async function firstDelivery(
  broker: RedisBroker,
  store: RedisStore,
  queue: string,
): Promise<{ delivery: Delivery; stop: () => Promise<void> }> {
  let resolve!: (d: Delivery) => void;
  const got = new Promise<Delivery>((r) => {
    resolve = r;
  });
  const subscription = await broker.consume(
    queue,
    { prefetch: 1, leaseMs: 30_000, records: { store, ttlMs: 30_000, worker: "w-1" } },
    resolve,
  );
  return { delivery: await got, stop: () => subscription.stop() };
}

describe.skipIf(found === undefined)("redis: the broker fused with a Redis store on the same server [needs JOBS_REDIS_URL]", () => {
  it("claims a recorded delivery's record in the fetch, and finishes it with the ack in one call", async () => {
    const p = pair();
    try {
      const envelope = await recordedJob(p.broker, p.store, p.queue);
      const { delivery, stop } = await firstDelivery(p.broker, p.store, p.queue);
      expect(delivery.claim).toEqual({ outcome: "claimed", fence: 1, claims: 1, cancelRequested: false });
      expect((await p.store.get(envelope.id))?.status).toBe("active");
      expect(typeof delivery.finishAndAck).toBe("function");
      expect(await delivery.finishAndAck?.({ id: envelope.id, fence: 1, status: "succeeded", resultJson: '"ok"' })).toBe(true);
      expect(await p.store.get(envelope.id)).toMatchObject({ status: "succeeded", resultJson: '"ok"' });
      expect(await p.broker.counts(p.queue)).toEqual({ waiting: 0, delayed: 0, active: 0, dead: 0 });
      await stop();
    } finally {
      await p.close();
    }
  });

  it("refuses a finish under a stale fence and keeps the delivery held (nothing acked)", async () => {
    const p = pair();
    try {
      const envelope = await recordedJob(p.broker, p.store, p.queue);
      const { delivery, stop } = await firstDelivery(p.broker, p.store, p.queue);
      expect(await delivery.finishAndAck?.({ id: envelope.id, fence: 7, status: "succeeded" })).toBe(false);
      expect((await p.store.get(envelope.id))?.status).toBe("active");
      expect((await p.broker.counts(p.queue)).active).toBe(1);
      // Still held: it can be settled another way.
      await delivery.defer(0);
      await stop();
    } finally {
      await p.close();
    }
  });

  it("reports a message of a finished record as stale in the fetch", async () => {
    const p = pair();
    try {
      const envelope = await recordedJob(p.broker, p.store, p.queue);
      await p.store.cancel(envelope.id);
      const { delivery, stop } = await firstDelivery(p.broker, p.store, p.queue);
      expect(delivery.claim).toEqual({ outcome: "stale", status: "cancelled" });
      await delivery.ack();
      await stop();
    } finally {
      await p.close();
    }
  });

  it("does not fuse with a store on another server: deliveries carry no claim", async () => {
    const other = await startPrivateRedis();
    const p = pair(`redis://127.0.0.1:${other.port}`);
    try {
      await recordedJob(p.broker, p.store, p.queue);
      const { delivery, stop } = await firstDelivery(p.broker, p.store, p.queue);
      expect(delivery.claim).toBeUndefined();
      expect(delivery.finishAndAck).toBeUndefined();
      await delivery.ack();
      await stop();
    } finally {
      await p.close();
      await other.stop();
    }
  });

  it("hands back through core the records a fetch claimed after the worker's close() began", async () => {
    const p = pair();
    const job = defineJob({ name: "fused.late", queue: p.queue });
    const client = createClient({ broker: p.broker, store: p.store });
    const ran: string[] = [];
    // Leases of an hour: a claim left behind would keep its job from the next worker for that long.
    const first = createWorker({ broker: p.broker, store: p.store, lease: "1h" }).handle(job, () => {
      ran.push("first");
    });
    const second = createWorker({ broker: p.broker, store: p.store, lease: "1h" }).handle(job, () => {
      ran.push("second");
      return "ran";
    });
    try {
      const handles = await Promise.all([1, 2, 3].map(() => client.enqueue(job, {})));
      await first.start();
      // The consumer's first fetch, sent as it registered, is still on its way: its reply, which
      // claimed the records, comes after close() stopped the consumer.
      await first.close();
      expect(ran).toEqual([]);
      for (const h of handles) expect(await client.getJob(h.id)).toMatchObject({ status: "waiting", fence: 1 });
      await second.start();
      expect(await Promise.all(handles.map((h) => h.result({ timeout: "1h" })))).toEqual(["ran", "ran", "ran"]);
      expect(ran).toEqual(["second", "second", "second"]);
    } finally {
      await first.close();
      await second.close();
      await p.close();
    }
  });

  it("runs jobs through core fused: results, retries and records as without fusion", async () => {
    const p = pair();
    const job = defineJob<{ n: number }>({ name: "fused.double", queue: p.queue, maxAttempts: 2, backoff: { type: "fixed", delay: 0 } });
    const worker = createWorker({ broker: p.broker, store: p.store, concurrency: 4 }).handle(job, (payload, ctx) => {
      if (payload.n === 3 && ctx.job.attempt === 1) throw new Error("once");
      return payload.n * 2;
    });
    try {
      await worker.start();
      const client = createClient({ broker: p.broker, store: p.store });
      const handles = await Promise.all([1, 2, 3, 4].map((i) => client.enqueue(job, { n: i })));
      expect(await Promise.all(handles.map((h) => h.result()))).toEqual([2, 4, 6, 8]);
      expect(await client.getJob(handles[2]?.id as string)).toMatchObject({ status: "succeeded", attempt: 2, gen: 2 });
    } finally {
      await worker.close();
      await p.close();
    }
  });

  it('claims from the front of the body only: a user\'s own "gen" in metadata neither misleads the fetch nor loses the job', async () => {
    const p = pair();
    const job = defineJob<{ gen: number }>({ name: "fused.meta", queue: p.queue });
    const worker = createWorker({ broker: p.broker, store: p.store }).handle(
      job,
      (payload, ctx) => `${payload.gen}:${ctx.job.metadata?.gen}`,
    );
    try {
      await worker.start();
      const client = createClient({ broker: p.broker, store: p.store });
      // Before the generation was written first, the fetch read this metadata's gen (5), found the
      // record at generation 1, called the delivery stale and acked it unrun.
      const handle = await client.enqueue(job, { gen: 7 }, { metadata: { gen: 5, payload: 1 } });
      expect(await handle.result({ timeout: "4s" })).toBe("7:5");
      expect(await client.getJob(handle.id)).toMatchObject({ status: "succeeded", gen: 1, claims: 1 });
    } finally {
      await worker.close();
      await p.close();
    }
    // A body with its generation elsewhere (written by another producer) is not claimed by the fetch: core claims it.
    const q = pair();
    try {
      const envelope = await recordedJob(q.broker, q.store, q.queue);
      const { gen: _, ...rest } = envelope;
      await q.broker.publish(q.queue, [
        { id: "other", body: JSON.stringify({ ...rest, id: "other", gen: 1 }), priority: 2, delayMs: 0, dedupe: false },
      ]);
      const deliveries: Delivery[] = [];
      const subscription = await q.broker.consume(
        q.queue,
        { prefetch: 2, leaseMs: 30_000, records: { store: q.store, ttlMs: 30_000, worker: "w-1" } },
        (d) => deliveries.push(d),
      );
      await waitFor(() => deliveries.length === 2, { message: "two deliveries" });
      await subscription.stop();
      expect(deliveries.map((d) => d.claim?.outcome)).toEqual(["claimed", undefined]);
    } finally {
      await q.close();
    }
  });
});
