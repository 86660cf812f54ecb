// The Redis store: what the store conformance suite cannot see (key layout and slots, one script
// call per batch, the store's clock, the subscriber connection, paging under the scan budget,
// refused credentials, the durability warning), and the contract's outcomes on Redis.
import { readFileSync } from "node:fs";
import { inspect } from "node:util";
import { brokerUrlFromEnv, freePort, type PrivateServer, startPrivateRedis } from "@jobs/conformance";
import { createClient, createWorker, defineJob } from "@jobs/core";
import {
  InvalidOptionsError,
  type JobStatus,
  JobsError,
  type LogEntry,
  type LogFields,
  type NewJobRecord,
  StoreClosedError,
  StoreConnectionError,
  type StoredJob,
} from "@jobs/core/adapter";
import { waitFor } from "@jobs/core/testing";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { createRedisBroker, createRedisStore, type RedisStore, type RedisStoreOptions, redisStoreKeys } from "../src/index.js";
import { SCAN_BUDGET } from "../src/store/store.js";
import { clusterSlot, deleteKeys } from "./support.js";

const url = brokerUrlFromEnv("JOBS_REDIS_URL");
const prefix = `jobs-store-${process.pid}-${Date.now().toString(36)}`;

let seq = 0;
/** A new record with a unique id. */
function record(fields: Partial<NewJobRecord> = {}): NewJobRecord {
  return {
    id: `job-${++seq}`,
    name: "send-mail",
    queue: "mail",
    status: "waiting",
    attempt: 1,
    maxAttempts: 3,
    priority: "normal",
    tags: [],
    payloadJson: '{"to":"ada@example.com"}',
    enqueuedAt: 1_700_000_000_000 + seq,
    runAt: 1_700_000_000_000 + seq,
    timeout: 30_000,
    gen: 1,
    ...fields,
  };
}

/** The server's clock (TIME), ms. */
async function serverTime(redis: Redis): Promise<number> {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

/** Every key under `p:` on the server. */
async function keysOf(redis: Redis, p: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const batch of redis.scanStream({ match: `${p}:*`, count: 1000 }) as AsyncIterable<string[]>) keys.push(...batch);
  return keys;
}

describe.skipIf(url === undefined)("redis store", { timeout: 30_000 }, () => {
  const stores: RedisStore[] = [];
  const open = (options: RedisStoreOptions = {}): RedisStore => {
    const store = createRedisStore({ url: url as string, prefix, logger: false, ...options });
    stores.push(store);
    return store;
  };
  const admin = new Redis(url as string);
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    admin.disconnect();
    await deleteKeys(url as string, prefix);
  });

  describe("the contract on Redis", () => {
    it("insert dedupes ids (also within one batch) and get returns the record with its bookkeeping", async () => {
      const store = open();
      const a = record({ tags: ["x", "y"], metadataJson: '{"tenant":1}', traceJson: '{"traceparent":"00-1"}', priority: "high" });
      const b = record({ status: "scheduled", runAt: 1_900_000_000_000 });
      const before = await serverTime(admin);
      expect(await store.insert([a, b, { ...a, name: "other" }])).toEqual(["inserted", "inserted", "exists"]);
      expect(await store.insert([b])).toEqual(["exists"]);
      const after = await serverTime(admin);
      const got = (await store.get(a.id)) as StoredJob;
      expect(got).toEqual({
        ...a,
        fence: 0,
        claims: 0,
        claimExpiresAt: 0,
        published: false,
        cancelRequested: false,
        updatedAt: got.updatedAt,
      });
      expect(got.updatedAt).toBeGreaterThanOrEqual(before);
      expect(got.updatedAt).toBeLessThanOrEqual(after);
      expect((await store.get(b.id))?.status).toBe("scheduled");
      expect(await store.get("no-such-job")).toBeUndefined();
      // JSON text is kept as given, never parsed: an empty metadata string stays an empty string.
      const odd = record({ metadataJson: "", payloadJson: '  {"spaced" : true}  ' });
      await store.insert([odd]);
      expect(await store.get(odd.id)).toMatchObject({ metadataJson: "", payloadJson: '  {"spaced" : true}  ' });
    });

    it("claim: claimed, busy under a live claim, stale for another gen, a terminal, a blocked record or none; timestamps by the store's clock", async () => {
      const store = open();
      const [a, b, c] = [record(), record({ status: "scheduled" }), record()];
      await store.insert([a, b, c]);
      await store.transition({ id: c.id, from: ["waiting"], to: "blocked" });
      const before = await serverTime(admin);
      const outcomes = await store.claim([
        { id: a.id, gen: 1, ttlMs: 60_000, worker: "w1" },
        { id: a.id, gen: 1, ttlMs: 60_000, worker: "w2" },
        { id: b.id, gen: 2, ttlMs: 60_000, worker: "w1" },
        { id: b.id, gen: 1, ttlMs: 60_000, worker: "w1" },
        { id: c.id, gen: 1, ttlMs: 60_000, worker: "w1" },
        { id: "missing", gen: 1, ttlMs: 60_000, worker: "w1" },
      ]);
      const after = await serverTime(admin);
      expect(outcomes[0]).toEqual({ outcome: "claimed", fence: 1, claims: 1, cancelRequested: false });
      expect(outcomes[1]).toMatchObject({ outcome: "busy" });
      const retryInMs = (outcomes[1] as { retryInMs: number }).retryInMs;
      expect(retryInMs).toBeGreaterThan(60_000 - (after - before) - 1);
      expect(retryInMs).toBeLessThanOrEqual(60_000);
      expect(outcomes.slice(2)).toEqual([
        { outcome: "stale", status: "scheduled" },
        { outcome: "claimed", fence: 1, claims: 1, cancelRequested: false },
        { outcome: "stale", status: "blocked" },
        { outcome: "stale" },
      ]);
      const claimed = (await store.get(a.id)) as StoredJob;
      expect(claimed).toMatchObject({ status: "active", fence: 1, claims: 1, worker: "w1" });
      expect(claimed.startedAt).toBeGreaterThanOrEqual(before);
      expect(claimed.startedAt).toBeLessThanOrEqual(after);
      expect(claimed.claimExpiresAt).toBe((claimed.startedAt as number) + 60_000);
      expect(claimed.updatedAt).toBe(claimed.startedAt);
      await store.finish([{ id: a.id, fence: 1, status: "succeeded", resultJson: "1" }]);
      expect(await store.claim([{ id: a.id, gen: 1, ttlMs: 1000, worker: "w3" }])).toEqual([{ outcome: "stale", status: "succeeded" }]);
    });

    it("a claim that ran out is taken over (fence + 1, claims + 1); the old holder's renew, progress and finish are refused", async () => {
      const store = open();
      const job = record();
      await store.insert([job]);
      await store.claim([{ id: job.id, gen: 1, ttlMs: 30, worker: "old" }]);
      const takeover = await waitFor(
        async () => {
          const [outcome] = await store.claim([{ id: job.id, gen: 1, ttlMs: 60_000, worker: "new" }]);
          return outcome?.outcome === "claimed" ? outcome : undefined;
        },
        { message: "the claim never ran out" },
      );
      expect(takeover).toEqual({ outcome: "claimed", fence: 2, claims: 2, cancelRequested: false });
      expect(await store.renew([{ id: job.id, fence: 1, ttlMs: 1000 }])).toEqual([{ ok: false }]);
      expect(await store.progress(job.id, 1, '"stale"')).toBe(false);
      expect(await store.finish([{ id: job.id, fence: 1, status: "succeeded" }])).toEqual([false]);
      expect(await store.progress(job.id, 2, '{"done":3}')).toBe(true);
      expect(await store.renew([{ id: job.id, fence: 2, ttlMs: 90_000 }])).toEqual([{ ok: true, cancelRequested: false }]);
      const got = (await store.get(job.id)) as StoredJob;
      expect(got).toMatchObject({ status: "active", fence: 2, claims: 2, worker: "new", progressJson: '{"done":3}' });
      expect(got.claimExpiresAt).toBe(got.updatedAt + 90_000);
    });

    it("finish: each status, written only under the fence, clearing the claim and cancelRequested", async () => {
      const store = open();
      const jobs = [record(), record(), record(), record(), record()];
      await store.insert(jobs);
      await store.claim(jobs.map((j) => ({ id: j.id, gen: 1, ttlMs: 60_000, worker: "w" })));
      expect(await store.cancel(jobs[0]?.id as string)).toEqual({ outcome: "cancel-requested" });
      const [s, r, d, c, w] = jobs.map((j) => j.id) as [string, string, string, string, string];
      expect(
        await store.finish([
          { id: s, fence: 1, status: "succeeded", resultJson: '{"sent":true}' },
          { id: r, fence: 1, status: "retrying", errorJson: '{"message":"boom"}', attempt: 2, runAt: 1_800_000_000_000 },
          { id: d, fence: 1, status: "dead", errorJson: '{"message":"fatal"}' },
          { id: c, fence: 1, status: "cancelled" },
          { id: w, fence: 1, status: "waiting" },
          { id: w, fence: 1, status: "succeeded" },
        ]),
      ).toEqual([true, true, true, true, true, false]);
      const [gs, gr, gd, gc, gw] = (await Promise.all([s, r, d, c, w].map((id) => store.get(id)))) as StoredJob[];
      expect(gs).toMatchObject({ status: "succeeded", resultJson: '{"sent":true}', cancelRequested: false, claimExpiresAt: 0 });
      expect(gs?.finishedAt).toBe(gs?.updatedAt);
      expect(gr).toMatchObject({ status: "retrying", gen: 2, attempt: 2, runAt: 1_800_000_000_000, claims: 0, published: false });
      expect(gr?.errorJson).toBe('{"message":"boom"}');
      expect(gr?.finishedAt).toBeUndefined();
      expect(gd).toMatchObject({ status: "dead", errorJson: '{"message":"fatal"}' });
      expect(gc).toMatchObject({ status: "cancelled" });
      expect(gw).toMatchObject({ status: "waiting", claims: 0, gen: 1, claimExpiresAt: 0 });
      // The retry is claimed by its new gen only.
      expect(await store.claim([{ id: r, gen: 1, ttlMs: 1000, worker: "w" }])).toEqual([{ outcome: "stale", status: "retrying" }]);
      expect(await store.claim([{ id: r, gen: 2, ttlMs: 1000, worker: "w" }])).toEqual([
        { outcome: "claimed", fence: 2, claims: 1, cancelRequested: false },
      ]);
    });

    it("transition: compare-and-set on status and gen; bumpGen unpublishes; terminal sets finishedAt, others clear it", async () => {
      const store = open();
      const job = record();
      await store.insert([job]);
      await store.markPublished([{ id: job.id, gen: 1 }]);
      expect(await store.transition({ id: job.id, from: ["dead"], to: "waiting" })).toBeUndefined();
      expect(await store.transition({ id: job.id, from: ["waiting"], gen: 2, to: "discarded" })).toBeUndefined();
      expect(await store.transition({ id: "missing", from: ["waiting"], to: "discarded" })).toBeUndefined();
      const dead = (await store.transition({ id: job.id, from: ["waiting"], gen: 1, to: "dead" })) as StoredJob;
      expect(dead).toMatchObject({ status: "dead", gen: 1, published: true });
      expect(dead.finishedAt).toBe(dead.updatedAt);
      const requeued = (await store.transition({
        id: job.id,
        from: ["dead"],
        to: "waiting",
        bumpGen: true,
        attempt: 1,
        runAt: 1_750_000_000_000,
      })) as StoredJob;
      expect(requeued).toMatchObject({ status: "waiting", gen: 2, published: false, attempt: 1, runAt: 1_750_000_000_000, claims: 0 });
      expect(requeued.finishedAt).toBeUndefined();
      expect(await store.get(job.id)).toEqual(requeued);
    });

    it("cancel: cancelled, cancel-requested (heard by renew and by the next claim), finished, not-found", async () => {
      const store = open();
      const [waiting, active] = [record(), record()];
      await store.insert([waiting, active]);
      await store.claim([{ id: active.id, gen: 1, ttlMs: 30, worker: "w" }]);
      expect(await store.cancel(waiting.id)).toEqual({ outcome: "cancelled" });
      expect(await store.cancel(waiting.id)).toEqual({ outcome: "finished", status: "cancelled" });
      expect(await store.cancel("missing")).toEqual({ outcome: "not-found" });
      expect(await store.cancel(active.id)).toEqual({ outcome: "cancel-requested" });
      expect(await store.claim([{ id: waiting.id, gen: 1, ttlMs: 1000, worker: "w" }])).toEqual([
        { outcome: "stale", status: "cancelled" },
      ]);
      // The holder paused past its claim: the takeover hears the cancel at once.
      const takeover = await waitFor(async () => {
        const [outcome] = await store.claim([{ id: active.id, gen: 1, ttlMs: 60_000, worker: "w2" }]);
        return outcome?.outcome === "claimed" ? outcome : undefined;
      });
      expect(takeover).toEqual({ outcome: "claimed", fence: 2, claims: 2, cancelRequested: true });
      expect(await store.renew([{ id: active.id, fence: 2, ttlMs: 60_000 }])).toEqual([{ ok: true, cancelRequested: true }]);
    });

    it("markPublished and unpublished: the sweeper sees runnable records of an unpublished gen, oldest write first", async () => {
      const p = `${prefix}-sweep`;
      const store = open({ prefix: p });
      try {
        const [a, b, c, d] = [record(), record(), record({ status: "scheduled" }), record()];
        await store.insert([a, b, c, d]);
        await store.markPublished([
          { id: b.id, gen: 1 },
          { id: c.id, gen: 2 }, // another gen: no-op
          { id: "missing", gen: 1 },
        ]);
        await store.claim([{ id: d.id, gen: 1, ttlMs: 60_000, worker: "w" }]); // active: not the sweeper's
        expect((await store.unpublished(0, 10)).map((j) => j.id)).toEqual([a.id, c.id]);
        expect((await store.unpublished(0, 1)).map((j) => j.id)).toEqual([a.id]);
        expect(await store.unpublished(3_600_000, 10)).toEqual([]);
        await store.finish([{ id: d.id, fence: 1, status: "retrying", attempt: 2, runAt: 0 }]);
        await store.transition({ id: a.id, from: ["waiting"], to: "discarded" });
        // d was written last: after c.
        expect((await store.unpublished(0, 10)).map((j) => j.id)).toEqual([c.id, d.id]);
        await store.markPublished([{ id: d.id, gen: 2 }]);
        expect((await store.unpublished(0, 10)).map((j) => j.id)).toEqual([c.id]);
        expect((await store.get(d.id))?.published).toBe(true);
      } finally {
        await deleteKeys(url as string, p);
      }
    });

    it("lease: held by one owner until it runs out (PX), renewable by its owner", async () => {
      const store = open();
      const name = `sweeper-${seq++}`;
      expect(await store.lease(name, "a", 60_000)).toBe(true);
      expect(await store.lease(name, "b", 60_000)).toBe(false);
      expect(await store.lease(name, "a", 40)).toBe(true);
      expect(await admin.pttl(`${redisStoreKeys(prefix).base}lease:${name}`)).toBeLessThanOrEqual(40);
      await waitFor(() => store.lease(name, "b", 60_000), { message: "the lease never ran out" });
      expect(await store.lease(name, "a", 60_000)).toBe(false);
    });

    it("prune: ties of finishedAt go by insertion, a pruned record leaves no index entry, a requeued one leaves retention", async () => {
      const p = `${prefix}-prune`;
      const store = open({ prefix: p });
      try {
        const name = `prune-${seq++}`;
        const jobs = Array.from({ length: 5 }, () => record({ name, tags: ["t1", "t2"], queue: "pq" }));
        await store.insert(jobs);
        await store.claim(jobs.map((j) => ({ id: j.id, gen: 1, ttlMs: 60_000, worker: "w" })));
        // One script call: all five finish at the same ms of the store's clock.
        await store.finish(jobs.map((j) => ({ id: j.id, fence: 1, status: "dead" as const })));
        expect(new Set(await Promise.all(jobs.map(async (j) => (await store.get(j.id))?.finishedAt))).size).toBe(1);
        const requeued = jobs[4] as NewJobRecord;
        await store.transition({ id: requeued.id, from: ["dead"], to: "waiting", bumpGen: true, attempt: 1 });
        expect(await store.prune({ name, status: "dead", keep: 2, limit: 100 })).toBe(2);
        // The two first inserted went; the requeued one is not dead any more, so not counted.
        expect(await Promise.all(jobs.map(async (j) => (await store.get(j.id))?.status))).toEqual([
          undefined,
          undefined,
          "dead",
          "dead",
          "waiting",
        ]);
        const keys = redisStoreKeys(p);
        for (const j of jobs.slice(0, 2)) {
          for (const index of ["all", "status:dead", "queue:pq", `name:${name}`, "tag:t1", "tag:t2", "unpublished"]) {
            expect(await admin.zscore(`${keys.base}${index}`, j.id), `${index} ${j.id}`).toBeNull();
          }
        }
        expect(await admin.zcard(`${keys.base}finished:dead:${name}`)).toBe(2);
        expect((await store.list({ limit: 10, name })).jobs.map((j) => j.id)).toEqual(jobs.slice(2).map((j) => j.id));
      } finally {
        await deleteKeys(url as string, p);
      }
    });

    it("rejects bad input with InvalidOptionsError and calls after close() with StoreClosedError", async () => {
      expect(() => createRedisStore({ prefix: "a{b}" })).toThrow(InvalidOptionsError);
      expect(() => createRedisStore({ connectTimeout: "soon" })).toThrow(/connectTimeout/);
      const store = open();
      await expect(store.list({ limit: 0 })).rejects.toBeInstanceOf(InvalidOptionsError);
      await expect(store.list({ limit: 10, cursor: "abc" })).rejects.toBeInstanceOf(InvalidOptionsError);
      await expect(store.list({ limit: 10, status: "done" as JobStatus })).rejects.toBeInstanceOf(InvalidOptionsError);
      await expect(store.claim([{ id: "x", gen: 1, ttlMs: 0, worker: "w" }])).rejects.toBeInstanceOf(InvalidOptionsError);
      await store.close();
      await store.close(); // idempotent
      for (const call of [
        () => store.insert([record()]),
        () => store.insert([]),
        () => store.get("x"),
        () => store.list({ limit: 1 }),
        () => store.watch(() => {}),
        () => store.lease("l", "o", 1000),
      ]) {
        await expect(call()).rejects.toBeInstanceOf(StoreClosedError);
      }
    });
  });

  it("keeps every key under <prefix>:{<prefix>:store}: in one Redis Cluster slot", async () => {
    const p = `${prefix}-slot`;
    const store = open({ prefix: p });
    try {
      // Braces in ids, names and tags come after the store's hash tag: the first "{…}" of a key decides its slot.
      const jobs = [record({ id: "{other}-1", tags: ["a", "{b}"], queue: "q1" }), record({ name: "{n2}", queue: "q2" })];
      await store.insert(jobs);
      await store.claim([{ id: jobs[0]?.id as string, gen: 1, ttlMs: 60_000, worker: "w" }]);
      await store.finish([{ id: jobs[0]?.id as string, fence: 1, status: "succeeded" }]);
      await store.lease("pruner", "me", 60_000);
      const keys = await keysOf(admin, p);
      expect(keys.length).toBeGreaterThan(10);
      for (const key of keys) expect(key.startsWith(`${p}:{${p}:store}:`), key).toBe(true);
      expect(new Set(keys.map(clusterSlot)).size).toBe(1);
      expect(clusterSlot(redisStoreKeys(p).finished)).toBe(clusterSlot(keys[0] as string));
    } finally {
      await deleteKeys(url as string, p);
    }
  });

  it("watch: one subscriber connection per store, hearing terminal statuses written by another store instance", async () => {
    const watcher = open();
    const writer = open();
    const heard: [string, JobStatus][] = [];
    const alsoHeard: string[] = [];
    const off = await watcher.watch((id, status) => heard.push([id, status]));
    await watcher.watch((id) => alsoHeard.push(id));
    const channel = redisStoreKeys(prefix).finished;
    expect(await admin.pubsub("NUMSUB", channel)).toEqual([channel, 1]);
    const [s, c, d, x] = [record(), record(), record(), record()];
    await writer.insert([s, c, d, x]);
    await writer.claim([{ id: s.id, gen: 1, ttlMs: 60_000, worker: "w" }]);
    await writer.finish([{ id: s.id, fence: 1, status: "succeeded", resultJson: "42" }]);
    await writer.cancel(c.id);
    await writer.transition({ id: d.id, from: ["waiting"], to: "discarded" });
    await waitFor(() => heard.length === 3, { message: `heard ${JSON.stringify(heard)}` });
    expect(heard).toEqual([
      [s.id, "succeeded"],
      [c.id, "cancelled"],
      [d.id, "discarded"],
    ]);
    off();
    await writer.cancel(x.id);
    await waitFor(() => alsoHeard.includes(x.id));
    expect(heard).toHaveLength(3);
    await watcher.close();
    await waitFor(async () => ((await admin.pubsub("NUMSUB", channel)) as [string, number])[1] === 0, {
      message: "close() left the subscriber connected",
    });
  });

  describe("list", () => {
    const p = `${prefix}-list`;
    afterAll(async () => {
      await deleteKeys(url as string, p);
    });

    /** Every page of `query`, checking each holds at most `limit`. */
    async function pages(store: RedisStore, query: Omit<Parameters<RedisStore["list"]>[0], "cursor">): Promise<StoredJob[][]> {
      const found: StoredJob[][] = [];
      let cursor: string | undefined;
      do {
        const page = await store.list(cursor === undefined ? query : { ...query, cursor });
        expect(page.jobs.length).toBeLessThanOrEqual(query.limit);
        found.push([...page.jobs]);
        cursor = page.cursor;
      } while (cursor !== undefined);
      return found;
    }

    it("pages through a few hundred records by each filter and their combinations, oldest enqueue first", async () => {
      const store = open({ prefix: p });
      const records = Array.from({ length: 360 }, (_, i) =>
        record({
          queue: `q${i % 3}`,
          name: `n${i % 4}`,
          tags: i % 5 === 0 ? ["vip", "eu"] : i % 2 === 0 ? ["eu"] : [],
        }),
      );
      // Three batches, so the insertion order (not the batch) decides the order.
      await store.insert(records.slice(0, 100));
      await store.insert(records.slice(100, 250));
      await store.insert(records.slice(250));
      // Every 7th job succeeds; every 11th is cancelled.
      const succeed = records.filter((_, i) => i % 7 === 0);
      await store.claim(succeed.map((r) => ({ id: r.id, gen: 1, ttlMs: 60_000, worker: "w" })));
      await store.finish(succeed.map((r) => ({ id: r.id, fence: 1, status: "succeeded" as const })));
      for (const r of records.filter((_, i) => i % 11 === 0 && i % 7 !== 0)) await store.cancel(r.id);
      const status = (i: number): JobStatus => (i % 7 === 0 ? "succeeded" : i % 11 === 0 ? "cancelled" : "waiting");

      const queries: { query: Parameters<RedisStore["list"]>[0]; expected: (r: NewJobRecord, i: number) => boolean }[] = [
        { query: { limit: 50 }, expected: () => true },
        { query: { limit: 7, queue: "q1" }, expected: (r) => r.queue === "q1" },
        { query: { limit: 9, name: "n2" }, expected: (r) => r.name === "n2" },
        { query: { limit: 10, tag: "vip" }, expected: (r) => r.tags.includes("vip") },
        { query: { limit: 13, status: "succeeded" }, expected: (_, i) => status(i) === "succeeded" },
        {
          query: { limit: 4, queue: "q2", name: "n1", tag: "eu" },
          expected: (r) => r.queue === "q2" && r.name === "n1" && r.tags.includes("eu"),
        },
        {
          query: { limit: 6, status: "waiting", tag: "eu", queue: "q0" },
          expected: (r, i) => status(i) === "waiting" && r.tags.includes("eu") && r.queue === "q0",
        },
        { query: { limit: 1000, status: "cancelled", name: "n3" }, expected: (r, i) => status(i) === "cancelled" && r.name === "n3" },
        { query: { limit: 5, queue: "nope" }, expected: () => false },
      ];
      for (const { query, expected } of queries) {
        const found = await pages(store, query);
        const ids = records.filter(expected).map((r) => r.id);
        expect(
          found.flat().map((j) => j.id),
          JSON.stringify(query),
        ).toEqual(ids);
        // Full pages until the last one, which carries no cursor.
        expect(found.length, JSON.stringify(query)).toBe(Math.max(1, Math.ceil(ids.length / query.limit)));
      }
      const [first] = await pages(store, { limit: 1, status: "succeeded" });
      expect(first?.[0]).toMatchObject({ id: records[0]?.id, status: "succeeded", fence: 1, tags: ["vip", "eu"] });
    });

    it("bounds the work of one call: a sparse match ends a page early with a cursor, and paging still finds every record", async () => {
      const store = open({ prefix: `${p}-sparse` });
      try {
        // Two large indexes that share only a few records: tag "a" on the first 2 × budget records,
        // name "late" on the last budget + 5 of them; only 5 records match both.
        const total = 2 * SCAN_BUDGET;
        const records = Array.from({ length: total }, (_, i) =>
          record({ tags: ["a"], name: i >= total - SCAN_BUDGET - 5 ? "late" : "early" }),
        );
        for (let i = 0; i < total; i += 2000) await store.insert(records.slice(i, i + 2000));
        const first = await store.list({ limit: 10, tag: "a", name: "late" });
        // The walk is driven by the smaller index (name "late": budget + 5 entries), and every
        // entry read is tested against the other: the budget runs out before its end.
        expect(first.cursor).toBeDefined();
        const found = [...first.jobs];
        let cursor = first.cursor;
        while (cursor !== undefined) {
          const page = await store.list({ limit: 10, tag: "a", name: "late", cursor });
          found.push(...page.jobs);
          cursor = page.cursor;
        }
        const expected = records.filter((r) => r.name === "late" && r.tags.includes("a")).map((r) => r.id);
        expect(found.map((j) => j.id)).toEqual(expected);
      } finally {
        await deleteKeys(url as string, `${p}-sparse`);
      }
    });
  });

  it("with core: a Redis broker and a Redis store run jobs with results, progress, failures, cancel and search", async () => {
    const store = open();
    const brokerPrefix = `${prefix}-broker`;
    const producer = createRedisBroker({ url: url as string, prefix: brokerPrefix, logger: false });
    const consumer = createRedisBroker({ url: url as string, prefix: brokerPrefix, logger: false });
    const queue = `e2e-${seq++}`;
    const resize = defineJob<{ n: number }>({ name: "resize", queue });
    const broken = defineJob<{ n: number }>({ name: "broken", queue, maxAttempts: 1 });
    const worker = createWorker({ broker: consumer, store, logger: false })
      .handle(resize, async ({ n }, ctx) => {
        await ctx.progress({ step: n });
        return { doubled: n * 2 };
      })
      .handle(broken, () => {
        throw new Error("no");
      });
    try {
      await worker.start();
      const client = createClient({ broker: producer, store, logger: false });
      const job = await client.enqueue(resize, { n: 21 }, { tags: ["user:42"] });
      expect(await job.result({ timeout: "10s" })).toEqual({ doubled: 42 });
      expect(await client.getJob(job.id)).toMatchObject({ status: "succeeded", progress: { step: 21 }, tags: ["user:42"] });
      const failing = await client.enqueue(broken, { n: 1 });
      await expect(failing.result({ timeout: "10s" })).rejects.toMatchObject({ code: "job-failed", status: "dead" });
      const later = await client.enqueue(resize, { n: 5 }, { delay: "1h", tags: ["user:42"] });
      expect(await client.cancel(later.id)).toEqual({ outcome: "cancelled" });
      await expect(later.result({ timeout: "10s" })).rejects.toMatchObject({ status: "cancelled" });
      const page = await client.listJobs({ tag: "user:42" });
      expect(page.jobs.map((j) => [j.id, j.status])).toEqual([
        [job.id, "succeeded"],
        [later.id, "cancelled"],
      ]);
    } finally {
      await worker.close();
      await Promise.all([producer.close(), consumer.close()]);
      await deleteKeys(url as string, brokerPrefix);
    }
  });

  describe("on private redis-servers", { timeout: 30_000 }, () => {
    const servers: PrivateServer[] = [];
    const serve = async (extra: readonly string[]): Promise<PrivateServer> => {
      const server = await startPrivateRedis(extra);
      servers.push(server);
      return server;
    };
    afterAll(async () => {
      await Promise.all(servers.map((s) => s.stop()));
    });

    it("sends each batch as one script call (INFO commandstats)", async () => {
      const server = await serve(["--appendonly", "yes", "--appendfsync", "always"]);
      const store = open({ url: `redis://127.0.0.1:${server.port}` });
      const local = new Redis(server.port, "127.0.0.1");
      try {
        const scriptCalls = async (): Promise<number> => {
          const info = await local.info("commandstats");
          let calls = 0;
          for (const m of info.matchAll(/^cmdstat_(?:eval|evalsha):calls=(\d+)/gm)) calls += Number(m[1]);
          return calls;
        };
        const jobs = Array.from({ length: 200 }, () => record());
        await store.get("warm-up"); // connected, config checked
        const counts: number[] = [await scriptCalls()];
        await store.insert(jobs);
        counts.push(await scriptCalls());
        await store.markPublished(jobs.map((j) => ({ id: j.id, gen: 1 })));
        counts.push(await scriptCalls());
        const claims = await store.claim(jobs.map((j) => ({ id: j.id, gen: 1, ttlMs: 60_000, worker: "w" })));
        counts.push(await scriptCalls());
        await store.renew(jobs.map((j) => ({ id: j.id, fence: 1, ttlMs: 60_000 })));
        counts.push(await scriptCalls());
        const finished = await store.finish(jobs.map((j) => ({ id: j.id, fence: 1, status: "succeeded" as const })));
        counts.push(await scriptCalls());
        expect(claims.every((c) => c.outcome === "claimed")).toBe(true);
        expect(finished.every(Boolean)).toBe(true);
        expect(counts.slice(1).map((n, i) => n - (counts[i] as number))).toEqual([1, 1, 1, 1, 1]);
      } finally {
        local.disconnect();
      }
    });

    it("a wrong password: every call fails at once with a non-retryable StoreConnectionError, credentials redacted", async () => {
      const server = await serve(["--requirepass", "the-right-one"]);
      const secret = "wrong-Secret-5d2e";
      const calls = (store: RedisStore) => [
        () => store.insert([record()]),
        () => store.get("x"),
        () => store.list({ limit: 1 }),
        () => store.claim([{ id: "x", gen: 1, ttlMs: 1000, worker: "w" }]),
        () => store.watch(() => {}),
      ];
      for (const credentials of [`:${secret}`, `nobody:${secret}`]) {
        const store = open({ url: `redis://${credentials}@127.0.0.1:${server.port}`, connectTimeout: 10_000 });
        for (const call of calls(store)) {
          const started = performance.now();
          const error = await call().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error).toBeInstanceOf(StoreConnectionError);
          const e = error as JobsError;
          expect(JobsError.isInstance(e)).toBe(true);
          expect(e.code).toBe("store-connection");
          expect(e.retryable).toBe(false);
          expect(e.message).toContain(`127.0.0.1:${server.port} refused the credentials`);
          for (const text of [e.message, String(e.cause), inspect(e, { depth: 10 })]) expect(text).not.toContain(secret);
          // At once: not after the 10-s connect timeout.
          expect(performance.now() - started).toBeLessThan(5_000);
        }
      }
      const right = open({ url: `redis://:the-right-one@127.0.0.1:${server.port}` });
      expect(await right.insert([record()])).toEqual(["inserted"]);
    });

    it("runs every operation under the least-privilege user of docs/adapters/redis.md (the broker's line and the store's)", async () => {
      const page = readFileSync(new URL("../../../docs/adapters/redis.md", import.meta.url), "utf8");
      const lines = page.split("\n").filter((line) => line.startsWith("ACL SETUSER jobs "));
      expect(lines).toHaveLength(2);
      const server = await serve(["--appendonly", "yes", "--appendfsync", "everysec"]);
      const local = new Redis(server.port, "127.0.0.1");
      try {
        for (const line of lines) {
          const words = line.replace(">change-me", ">acl-test-pass").split(" ");
          await local.call(words[0] as string, ...words.slice(1));
        }
      } finally {
        local.disconnect();
      }
      const store = open({ url: `redis://jobs:acl-test-pass@127.0.0.1:${server.port}`, prefix: "jobs" });
      const warnings: string[] = [];
      const errors: unknown[] = [];
      store.on("config-warning", (w) => warnings.push(w.code));
      store.on("error", (e) => errors.push(e));
      const heard: string[] = [];
      await store.watch((id, status) => heard.push(`${status} ${id}`));
      const [a, b] = [record({ tags: ["t"] }), record()];
      expect(await store.insert([a, b])).toEqual(["inserted", "inserted"]);
      await store.markPublished([{ id: a.id, gen: 1 }]);
      expect(await store.claim([{ id: a.id, gen: 1, ttlMs: 60_000, worker: "w" }])).toMatchObject([{ outcome: "claimed" }]);
      expect(await store.renew([{ id: a.id, fence: 1, ttlMs: 60_000 }])).toEqual([{ ok: true, cancelRequested: false }]);
      expect(await store.progress(a.id, 1, "1")).toBe(true);
      expect(await store.finish([{ id: a.id, fence: 1, status: "succeeded" }])).toEqual([true]);
      expect(await store.cancel(b.id)).toEqual({ outcome: "cancelled" });
      expect(await store.transition({ id: b.id, from: ["cancelled"], to: "waiting", bumpGen: true })).toMatchObject({ gen: 2 });
      expect((await store.unpublished(0, 10)).map((j) => j.id)).toEqual([b.id]);
      expect((await store.list({ limit: 10, tag: "t", status: "succeeded" })).jobs.map((j) => j.id)).toEqual([a.id]);
      expect(await store.lease("sweeper", "me", 60_000)).toBe(true);
      expect((await store.get(a.id))?.status).toBe("succeeded");
      expect(await store.prune({ name: a.name, status: "succeeded", keep: 0, limit: 10 })).toBe(1);
      await waitFor(() => heard.length === 2 && warnings.length === 1, { message: `heard ${heard}, warnings ${warnings}` });
      expect(heard).toEqual([`succeeded ${a.id}`, `cancelled ${b.id}`]);
      // CONFIG GET appendfsync was allowed: the everysec window was read.
      expect(warnings).toEqual(["JOBS_REDIS_AOF_EVERYSEC"]);
      expect(errors).toEqual([]);
    });

    it("a closed port: a retryable StoreConnectionError naming the host after connectTimeout", async () => {
      const port = await freePort();
      const store = open({ url: `redis://:secret-7f@127.0.0.1:${port}`, connectTimeout: 300 });
      const error = (await store.get("x").catch((e: unknown) => e)) as JobsError;
      expect(error).toBeInstanceOf(StoreConnectionError);
      expect(error.retryable).toBe(true);
      expect(error.message).toContain(`cannot connect to 127.0.0.1:${port} within 300 ms`);
      expect(inspect(error, { depth: 10 })).not.toContain("secret-7f");
    });

    it("warns (config-warning) with the window of writes a crash can lose: AOF off, appendfsync everysec; not with always", async () => {
      const check = async (extra: readonly string[]): Promise<LogEntry[]> => {
        const server = await serve(extra);
        const entries: LogEntry[] = [];
        const logger = {
          warn: (fields: LogFields, message: string) => entries.push({ level: "warn", code: fields.code, message }),
          error: (fields: LogFields, message: string) => entries.push({ level: "error", code: fields.code, message }),
        };
        const store = open({ url: `redis://127.0.0.1:${server.port}`, logger });
        const heard: { code: string; message: string }[] = [];
        store.on("config-warning", (w) => heard.push(w));
        const local = new Redis(server.port, "127.0.0.1");
        try {
          // The check ran once INFO and CONFIG GET reached the server (CONFIG only with AOF on)…
          const aofOn = extra.includes("yes");
          await waitFor(async () => {
            const stats = await local.info("commandstats");
            return /cmdstat_info:/.test(stats) && (!aofOn || /cmdstat_config\|get:/.test(stats));
          });
          // … and its replies came before those of two later calls on the same connection.
          await store.get("x");
          await store.get("x");
        } finally {
          local.disconnect();
        }
        expect(entries.map((e) => e.code)).toEqual(heard.map((w) => w.code));
        return entries;
      };
      const off = await check(["--appendonly", "no"]);
      expect(off.map((e) => e.code)).toEqual(["JOBS_REDIS_NO_AOF"]);
      expect(off[0]?.message).toMatch(/store: AOF is off.*since the last snapshot.*`succeeded`/);
      const everysec = await check(["--appendonly", "yes", "--appendfsync", "everysec"]);
      expect(everysec.map((e) => e.code)).toEqual(["JOBS_REDIS_AOF_EVERYSEC"]);
      expect(everysec[0]?.message).toContain("up to 1 s of acknowledged record writes (e.g. a `succeeded`)");
      expect(await check(["--appendonly", "yes", "--appendfsync", "always"])).toEqual([]);
      const evicting = await check(["--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "allkeys-lru"]);
      expect(evicting.map((e) => e.code)).toEqual(["JOBS_REDIS_EVICTION"]);
    });
  });
});
