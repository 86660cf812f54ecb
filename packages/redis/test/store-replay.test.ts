/**
 * A store call whose reply a dropped connection lost is resent by ioredis and runs a second time.
 * Each replay must answer what the first run did (lua/store/common.lua, tokens), not report a
 * conflict with itself: an insert is not a duplicate, a claim is not busy, a finish is not refused.
 * A private Redis behind the fault proxy: the proxy holds the replies, the case waits (reading the
 * server directly) until the call has run, then resets the connection.
 */
import { createFaultProxy, type FaultProxy, type PrivateServer, startPrivateRedis } from "@jobs/conformance";
import type { NewJobRecord } from "@jobs/core/adapter";
import { waitFor } from "@jobs/core/testing";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisStore, type RedisStore, redisStoreKeys } from "../src/index.js";

const prefix = `jobs-replay-${process.pid}`;
let server: PrivateServer;
let proxy: FaultProxy;
let store: RedisStore;
let direct: Redis;

beforeAll(async () => {
  server = await startPrivateRedis();
  proxy = await createFaultProxy({ target: { host: "127.0.0.1", port: server.port } });
  // Pings only every minute: nothing but the call under test crosses the proxy meanwhile.
  store = createRedisStore({
    url: `redis://127.0.0.1:${proxy.address.port}`,
    prefix,
    heartbeat: "60s",
    heartbeatTimeout: "60s",
    maxReconnectDelay: "200ms",
    logger: false,
  });
  direct = new Redis(`redis://127.0.0.1:${server.port}`);
  await store.get("warm-up");
});

afterAll(async () => {
  direct.disconnect();
  await store.close();
  await proxy.close();
  await server.stop();
});

/** Runs `call` with its reply held until `ran` sees its effect on the server, then cuts the connection: ioredis resends it. */
async function replayed<T>(call: () => Promise<T>, ran: () => Promise<boolean>): Promise<T> {
  proxy.pauseOneWay("downstream");
  const answer = call();
  await waitFor(ran, { message: "the call never ran on the server" });
  proxy.resetConnections();
  proxy.resume();
  return answer;
}

function record(): NewJobRecord {
  const now = Date.now();
  return {
    id: crypto.randomUUID(),
    name: "replay.job",
    queue: "replay",
    status: "waiting",
    attempt: 1,
    maxAttempts: 3,
    priority: "normal",
    tags: [],
    payloadJson: "{}",
    enqueuedAt: now,
    runAt: now,
    timeout: 30_000,
    gen: 1,
  };
}

const field = (id: string, name: string): Promise<string | null> => direct.hget(redisStoreKeys(prefix).job(id), name);

describe("redis store: a replayed call answers what its first run did", () => {
  it("an insert is inserted, not a duplicate", async () => {
    const r = record();
    const outcome = await replayed(
      () => store.insert([r]),
      async () => (await field(r.id, "id")) !== null,
    );
    expect(outcome).toEqual(["inserted"]);
    expect(await store.insert([r])).toEqual(["exists"]);
  });

  it("a claim is claimed with its fence, not busy, and counted once", async () => {
    const r = record();
    await store.insert([r]);
    const outcome = await replayed(
      () => store.claim([{ id: r.id, gen: 1, ttlMs: 30_000, worker: "w-1" }]),
      async () => (await field(r.id, "status")) === "active",
    );
    expect(outcome).toEqual([{ outcome: "claimed", fence: 1, claims: 1, cancelRequested: false }]);
    expect((await store.get(r.id))?.claims).toBe(1);
    expect(await store.claim([{ id: r.id, gen: 1, ttlMs: 30_000, worker: "w-2" }])).toEqual([
      { outcome: "busy", retryInMs: expect.any(Number) },
    ]);
  });

  it("a finish is written, not refused", async () => {
    const r = record();
    await store.insert([r]);
    await store.claim([{ id: r.id, gen: 1, ttlMs: 30_000, worker: "w-1" }]);
    const outcome = await replayed(
      () => store.finish([{ id: r.id, fence: 1, status: "succeeded", resultJson: '"ok"' }]),
      async () => (await field(r.id, "status")) === "succeeded",
    );
    expect(outcome).toEqual([true]);
    expect(await store.finish([{ id: r.id, fence: 1, status: "succeeded" }])).toEqual([false]);
  });
});
