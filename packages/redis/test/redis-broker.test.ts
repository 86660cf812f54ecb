// What the conformance suite cannot see: the key layout, idempotent publish, server
// configuration warnings, recycling of a stalled connection, and credentials kept out of errors.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { inspect } from "node:util";
import { brokerUrlFromEnv, createFaultProxy, type PrivateServer, startPrivateServer } from "@jobs/conformance";
import { type Broker, createClient, createWorker, defineJob } from "@jobs/core";
import type { BrokerEventMap, Delivery, OutgoingMessage, PublishOutcome } from "@jobs/core/adapter";
import { waitFor, waitForEvent } from "@jobs/core/testing";
import { Redis } from "ioredis";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createRedisBroker, type RedisBrokerOptions, redisQueueKeys } from "../src/index.js";
import { clusterSlot, deleteKeys, redisServerArgs } from "./support.js";

const url = brokerUrlFromEnv("JOBS_REDIS_URL");
const prefix = `jobs-unit-${process.pid}-${Date.now().toString(36)}`;

function msg(body: string, fields: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return { id: randomUUID(), body, priority: 2, delayMs: 0, dedupe: true, ...fields };
}

function isStored(outcome: PublishOutcome | undefined): boolean {
  return outcome?.ok === true && !outcome.duplicate;
}

/** Records every event of a broker. */
function record(broker: Broker): { type: keyof BrokerEventMap; data: unknown }[] {
  const seen: { type: keyof BrokerEventMap; data: unknown }[] = [];
  for (const type of ["config-warning", "disconnected", "reconnected", "insecure-connection", "error"] as const) {
    broker.on(type, (data) => seen.push({ type, data }));
  }
  return seen;
}

describe.skipIf(url === undefined)("redis adapter [needs JOBS_REDIS_URL]", () => {
  const brokers: Broker[] = [];
  const open = (options: RedisBrokerOptions = {}): Broker => {
    const broker = createRedisBroker({ url: url as string, prefix, ...options });
    brokers.push(broker);
    return broker;
  };
  afterEach(async () => {
    await Promise.all(brokers.splice(0).map((b) => b.close()));
  });
  afterAll(async () => {
    await deleteKeys(url as string, prefix);
  });

  it("keeps every key of a queue under <prefix>:{<queue>}:, so all of them share one Cluster slot", async () => {
    const queue = `layout-${randomUUID().slice(0, 8)}`;
    const broker = open();
    const keys = redisQueueKeys(queue, prefix);
    const all = [
      ...keys.waiting,
      keys.delayed,
      keys.body,
      keys.active,
      keys.dead,
      keys.deadRecords,
      keys.seen,
      keys.seenPrevious,
      keys.seenSince,
      keys.seq,
      keys.wake,
    ];
    expect(new Set(all.map(clusterSlot)).size).toBe(1);
    expect(clusterSlot(keys.body)).toBe(clusterSlot(queue));
    expect(all.every((k) => k.startsWith(`${prefix}:{${queue}}:`))).toBe(true);

    await broker.publish(queue, [msg("now", { priority: 4 }), msg("later", { delayMs: 60_000, priority: 0 })]);
    const delivered: string[] = [];
    // Take the ready one and dead-letter it, so the dead-letter keys exist too.
    await broker.consume(queue, { prefetch: 1, leaseMs: 30_000 }, (d) => {
      delivered.push(d.body);
      void d.deadLetter({ body: d.body, reason: "validation", error: { name: "E", message: "x" }, failedAt: Date.now() });
    });
    await waitFor(async () => (await broker.counts(queue)).dead === 1, { timeout: 5_000, message: "no dead letter" });
    const redis = new Redis(url as string);
    try {
      const found: string[] = [];
      for await (const batch of redis.scanStream({ match: `${prefix}:{${queue}}*`, count: 1000 }) as AsyncIterable<string[]>) {
        found.push(...batch);
      }
      // Only documented keys, every one in the queue's slot.
      expect(found.every((k) => all.includes(k))).toBe(true);
      expect(found).toEqual(
        expect.arrayContaining([keys.body, keys.delayed, keys.dead, keys.deadRecords, keys.seen, keys.seenSince, keys.seq]),
      );
      // The delayed message waits under its key in the delayed set, its level first; its body in the body hash.
      const [member] = await redis.zrange(keys.delayed, "0", "-1");
      expect(member).toMatch(/^0\d+$/);
      expect(await redis.hget(keys.body, member as string)).toBe("later");
      expect(delivered).toEqual(["now"]);
    } finally {
      redis.disconnect();
    }
  });

  it("stores a re-sent publish (same id, dedupe on) once, in one batch and in a second call; dedupe: false is never dropped", async () => {
    const queue = `resend-${randomUUID().slice(0, 8)}`;
    const broker = open();
    const first = msg("once");
    expect(await broker.publish(queue, [first, { ...first, body: "twice-in-batch" }])).toEqual([
      { ok: true, duplicate: false },
      { ok: true, duplicate: true },
    ]);
    // What ioredis does after a reconnect: the same publish again.
    expect(await broker.publish(queue, [first])).toEqual([{ ok: true, duplicate: true }]);
    // dedupe: false (retries, requeues) is never dropped.
    expect(await broker.publish(queue, [{ ...first, body: "requeued", dedupe: false }])).toEqual([{ ok: true, duplicate: false }]);
    expect(await broker.counts(queue)).toEqual({ waiting: 2, delayed: 0, active: 0, dead: 0 });
    const bodies: string[] = [];
    await broker.consume(queue, { prefetch: 10, leaseMs: 30_000 }, (d) => {
      bodies.push(d.body);
      void d.ack();
    });
    await waitFor(() => bodies.length === 2, { timeout: 5_000, message: "expected two deliveries" });
    expect(bodies).toEqual(["once", "requeued"]);
  });

  it("the dedupe window ends: an id is accepted again once the window is over", async () => {
    const queue = `window-${randomUUID().slice(0, 8)}`;
    const broker = open({ dedupeWindow: 50 });
    const m = msg("first");
    expect(await broker.publish(queue, [m])).toEqual([{ ok: true, duplicate: false }]);
    await waitFor(async () => isStored((await broker.publish(queue, [{ ...m, body: "again" }]))[0]), {
      timeout: 5_000,
      message: "the id stayed a duplicate after its window",
    });
    expect((await broker.counts(queue)).waiting).toBe(2);
  });

  it("counts deliveries across lease expiries (a worker that keeps dying), so core dead-letters the crash loop", async () => {
    const queue = `crash-${randomUUID().slice(0, 8)}`;
    const job = defineJob<{ n: number }>({ name: "crash.loop", queue });
    await createClient({ broker: open() }).enqueue(job, { n: 1 });
    // Three consumers take the job and "die": they never settle it, and its lease runs out.
    for (let i = 1; i <= 3; i++) {
      const seen: Delivery[] = [];
      const sub = await open().consume(queue, { prefetch: 1, leaseMs: 150 }, (d) => seen.push(d));
      await waitFor(() => seen[0], { timeout: 5_000, message: `delivery ${i} never came` });
      expect(seen[0]?.deliveryCount).toBe(i);
      await sub.stop();
    }
    const worker = createWorker({ broker: open(), maxDeliveries: 3, lease: "30s" });
    let ran = 0;
    worker.handle(job, () => {
      ran++;
    });
    const dead = waitForEvent(worker, "job.dead-lettered", () => true, { timeout: 5_000 });
    await worker.start();
    try {
      expect((await dead).reason).toBe("crash-loop");
      expect(ran).toBe(0);
    } finally {
      await worker.close();
    }
  });

  it("a lease past its deadline is lost before any fetch reaped it: settle and extend reject, and the message comes back", async () => {
    const queue = `expired-${randomUUID().slice(0, 8)}`;
    const broker = open();
    await broker.publish(queue, [msg("late")]);
    const seen: Delivery[] = [];
    await broker.consume(queue, { prefetch: 1, leaseMs: 200 }, (d) => seen.push(d));
    await waitFor(() => seen[0], { timeout: 5_000 });
    // The event loop stalls past the lease: no fetch of this process can reap it first.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 400);
    await expect(seen[0]?.extendLease(30_000)).rejects.toMatchObject({ code: "lease-lost" });
    await expect(seen[0]?.ack()).rejects.toMatchObject({ code: "lease-lost" });
    await waitFor(() => seen[1], { timeout: 10_000, message: "the expired delivery never came back" });
    expect(seen[1]?.body).toBe("late");
    expect(seen[1]?.deliveryCount).toBe(2);
  });

  it("a fetch answered after stop() puts its messages back with their delivery count unchanged", async () => {
    const queue = `unfetch-${randomUUID().slice(0, 8)}`;
    const broker = open();
    await broker.publish(queue, [msg("only")]);
    const early: Delivery[] = [];
    const sub = await broker.consume(queue, { prefetch: 1, leaseMs: 30_000 }, (d) => early.push(d));
    // The consumer's first fetch is on its way (consume does not wait for it): stop before its reply.
    await sub.stop();
    const later: Delivery[] = [];
    await open().consume(queue, { prefetch: 1, leaseMs: 30_000 }, (d) => later.push(d));
    await waitFor(() => later[0], { timeout: 5_000, message: "the message never came back" });
    expect(early).toEqual([]);
    expect(later[0]?.body).toBe("only");
    expect(later[0]?.deliveryCount).toBe(1);
  });

  it("close() hands unsettled deliveries back at once, long before their lease (redeliverOnClose stays false: a dead process is only noticed by its lease)", async () => {
    const queue = `release-${randomUUID().slice(0, 8)}`;
    const [producer, dying, survivor] = [open(), open(), open()];
    await producer.publish(queue, [msg("r-0"), msg("r-1")]);
    const held: Delivery[] = [];
    await dying.consume(queue, { prefetch: 2, leaseMs: 60_000 }, (d) => held.push(d));
    await waitFor(() => held.length === 2, { timeout: 5_000 });
    const got: Delivery[] = [];
    await survivor.consume(queue, { prefetch: 5, leaseMs: 60_000 }, (d) => got.push(d));
    const closedAt = performance.now();
    await dying.close();
    await waitFor(() => got.length === 2, { timeout: 5_000, message: "released deliveries did not come back" });
    expect(performance.now() - closedAt).toBeLessThan(5_000);
    expect(got.map((d) => [d.body, d.deliveryCount]).sort()).toEqual([
      ["r-0", 2],
      ["r-1", 2],
    ]);
  });

  it("purges a queue larger than one purge chunk completely, bodies included", async () => {
    const queue = `purge-${randomUUID().slice(0, 8)}`;
    const broker = open();
    const ready = Array.from({ length: 4_500 }, (_, i) => msg(`m-${i}`, { priority: (i % 5) as 0 | 1 | 2 | 3 | 4 }));
    await broker.publish(queue, ready);
    await broker.publish(
      queue,
      Array.from({ length: 50 }, (_, i) => msg(`d-${i}`, { delayMs: 60_000 })),
    );
    expect(await broker.counts(queue)).toEqual({ waiting: 4_500, delayed: 50, active: 0, dead: 0 });
    await broker.purge(queue);
    expect(await broker.counts(queue)).toEqual({ waiting: 0, delayed: 0, active: 0, dead: 0 });
    const redis = new Redis(url as string);
    try {
      expect(await redis.hlen(redisQueueKeys(queue, prefix).body)).toBe(0);
    } finally {
      redis.disconnect();
    }
  });

  it("emits insecure-connection for a non-loopback server reached without TLS or password, and only then", async () => {
    const seen = (broker: Broker): string[] => {
      const messages: string[] = [];
      broker.on("insecure-connection", (e) => messages.push(e.message));
      return messages;
    };
    // 192.0.2.1 is TEST-NET-1: never reached, never ready; the warning is about the configuration.
    const exposed = createRedisBroker({ url: "redis://192.0.2.1:6379" });
    const withPassword = createRedisBroker({ url: "redis://:secret@192.0.2.1:6379" });
    const local = open();
    const [a, b, c] = [seen(exposed), seen(withPassword), seen(local)];
    // The event is emitted on the turn after the factory returns (core's warnInsecureConnection), before any I/O.
    await new Promise<void>((resolve) => setImmediate(resolve));
    await Promise.all([exposed.close(), withPassword.close()]);
    expect(a).toHaveLength(1);
    expect(a[0]).toContain("192.0.2.1");
    expect(b).toEqual([]);
    expect(c).toEqual([]);
  });

  describe("on private redis-servers", { timeout: 30_000 }, () => {
    const servers: PrivateServer[] = [];
    const serve = async (extra: readonly string[]): Promise<PrivateServer> => {
      const server = await startPrivateServer({ command: "redis-server", args: ({ port, dir }) => redisServerArgs(port, dir, extra) });
      servers.push(server);
      return server;
    };
    afterAll(async () => {
      await Promise.all(servers.map((s) => s.stop()));
    });

    it("warns (config-warning) about an evicting maxmemory-policy and about AOF off, and not when both are right", async () => {
      const server = await serve(["--maxmemory-policy", "allkeys-lru", "--appendonly", "no"]);
      const bad = createRedisBroker({ url: `redis://127.0.0.1:${server.port}` });
      brokers.push(bad);
      const events = record(bad);
      await waitFor(() => events.filter((e) => e.type === "config-warning").length === 2, {
        timeout: 5_000,
        message: "expected two config warnings",
      });
      const messages = events.map((e) => (e.data as { message: string }).message);
      expect(messages.some((m) => m.includes("maxmemory-policy") && m.includes("allkeys-lru"))).toBe(true);
      expect(messages.some((m) => m.includes("AOF is off"))).toBe(true);

      // The same server set right: no warning (the check is not always on).
      const admin = new Redis(server.port, "127.0.0.1");
      await admin.config("SET", "maxmemory-policy", "noeviction");
      await admin.config("SET", "appendonly", "yes");
      await waitFor(async () => /aof_enabled:1/.test(await admin.info("persistence")), { timeout: 10_000 });
      admin.disconnect();
      const good = createRedisBroker({ url: `redis://127.0.0.1:${server.port}` });
      brokers.push(good);
      const quiet = record(good);
      // Two calls: the second is sent after the connection was ready, so after the check's INFO, whose reply comes first.
      await good.counts("q");
      await good.counts("q");
      expect(quiet).toEqual([]);
    });

    it("recycles a stalled connection (fault proxy paused): disconnected, then reconnected, and a publish made meanwhile lands once", async () => {
      const server = await serve(["--appendonly", "yes"]);
      const proxy = await createFaultProxy({ target: { host: "127.0.0.1", port: server.port } });
      try {
        const broker = createRedisBroker({
          url: `redis://${proxy.address.host}:${proxy.address.port}`,
          heartbeat: 100,
          heartbeatTimeout: 400,
          maxReconnectDelay: 100,
        });
        brokers.push(broker);
        const events = record(broker);
        const queue = "stalled";
        await broker.counts(queue);
        proxy.pause();
        const stalledAt = performance.now();
        const m = msg("across-the-stall");
        const pending = broker.publish(queue, [m]);
        // ioredis alone would wait forever here: the broker must notice by itself.
        await waitFor(() => events.some((e) => e.type === "disconnected"), { timeout: 5_000, message: "stall never detected" });
        expect(performance.now() - stalledAt).toBeLessThan(3_000);
        proxy.resume();
        await waitFor(() => events.some((e) => e.type === "reconnected"), { timeout: 10_000, message: "never reconnected" });
        const [outcome] = await pending;
        expect(outcome?.ok).toBe(true);
        // Re-sent or not, the job is there exactly once.
        expect(await broker.publish(queue, [m])).toEqual([{ ok: true, duplicate: true }]);
        expect(await broker.counts(queue)).toEqual({ waiting: 1, delayed: 0, active: 0, dead: 0 });
      } finally {
        await proxy.close();
      }
    });

    it("works as a user limited by the ACL line of docs/adapters/redis.md (key prefix and commands)", async () => {
      const page = readFileSync(new URL("../../../docs/adapters/redis.md", import.meta.url), "utf8");
      const acl = page.split("\n").find((line) => line.startsWith("ACL SETUSER jobs "));
      expect(acl).toBeDefined();
      const server = await serve(["--appendonly", "yes"]);
      const admin = new Redis(server.port, "127.0.0.1");
      try {
        const words = (acl as string).replace(">change-me", ">acl-test-pass").split(" ");
        await admin.call(words[0] as string, ...words.slice(1));
      } finally {
        admin.disconnect();
      }
      // A 20 ms dedupe window, so that later publishes rotate the dedupe generations (RENAME, UNLINK).
      const broker = createRedisBroker({ url: `redis://jobs:acl-test-pass@127.0.0.1:${server.port}`, dedupeWindow: 20 });
      brokers.push(broker);
      const events = record(broker);
      const queue = "acl";
      await broker.publish(queue, [msg("to-retry"), msg("to-dead"), msg("to-defer"), msg("delayed", { delayMs: 50 })]);
      const bodies: string[] = [];
      let deferred = 0;
      // prefetch 1 with an idle wait in between: fetch, settle, BLPOP and the delay timer all run.
      const sub = await broker.consume(queue, { prefetch: 1, leaseMs: 30_000 }, (d) => {
        bodies.push(d.body);
        const settle = async (): Promise<void> => {
          await d.extendLease(30_000);
          if (d.body === "to-retry") await d.retry(msg("retried", { dedupe: false }));
          else if (d.body === "to-dead")
            await d.deadLetter({ body: d.body, reason: "validation", error: { name: "E", message: "x" }, failedAt: 1 });
          else if (d.body === "to-defer" && d.deliveryCount === 1 && !deferred++) await d.defer(0);
          else await d.ack();
        };
        settle().catch((error: unknown) => events.push({ type: "error", data: error }));
      });
      await waitFor(() => bodies.includes("retried") && bodies.includes("delayed") && bodies.filter((b) => b === "to-defer").length === 2, {
        timeout: 5_000,
        message: "round trip under the ACL did not complete",
      });
      expect(events).toEqual([]);
      await waitFor(async () => (await broker.counts(queue)).active === 0, { timeout: 5_000 });
      const dead = await broker.listDeadLetters(queue, { limit: 10 });
      expect(dead.map((d) => d.body)).toEqual(["to-dead"]);
      expect(await broker.removeDeadLetters(queue, [dead[0]?.key as string])).toBe(1);
      await sub.stop();
      await broker.publish(queue, [msg("purged", { delayMs: 60_000 }), msg("purged-too"), msg("purged-as-well")]);
      await broker.purge(queue);
      expect(await broker.counts(queue)).toEqual({ waiting: 0, delayed: 0, active: 0, dead: 0 });
      // The configuration check ran too (INFO allowed): AOF is on and the policy is noeviction, so no warning.
      expect(events).toEqual([]);
    });

    it("with Redis down, a publish settles as ambiguous within requestTimeout, and close() does not wait for Redis", async () => {
      const server = await serve(["--appendonly", "yes"]);
      const broker = createRedisBroker({ url: `redis://127.0.0.1:${server.port}`, requestTimeout: 500, maxReconnectDelay: 100 });
      const events = record(broker);
      await broker.consume("down", { prefetch: 5, leaseMs: 30_000 }, () => {});
      await broker.counts("down");
      await server.kill("SIGKILL");
      await waitFor(() => events.some((e) => e.type === "disconnected"), { timeout: 5_000, message: "outage not noticed" });
      const startedAt = performance.now();
      const [outcome] = await broker.publish("down", [msg("during-outage")]);
      expect(performance.now() - startedAt).toBeLessThan(1_500);
      expect(outcome?.ok === false && outcome.error.code).toBe("enqueue-outcome-unknown");
      const closingAt = performance.now();
      await broker.close();
      expect(performance.now() - closingAt).toBeLessThan(1_000);
    });

    it("negative control of the restart cases: without AOF a kill -9 loses accepted jobs (what the config warning is about)", async () => {
      const server = await serve(["--appendonly", "no"]);
      const url = `redis://127.0.0.1:${server.port}`;
      const broker = createRedisBroker({ url, maxReconnectDelay: 100 });
      brokers.push(broker);
      await broker.publish("volatile", [msg("a"), msg("b"), msg("c")]);
      expect((await broker.counts("volatile")).waiting).toBe(3);
      await server.restart("SIGKILL");
      await waitFor(async () => (await broker.counts("volatile").catch(() => undefined))?.waiting === 0, {
        timeout: 10_000,
        message: "the jobs survived a crash without persistence: the durability cases could not fail",
      });
    });

    it("keeps the password out of errors, causes and events when authentication fails", async () => {
      const password = `pw-${randomUUID()}`;
      const server = await serve(["--requirepass", "the-right-one"]);
      const broker = createRedisBroker({ url: `redis://:${password}@127.0.0.1:${server.port}`, requestTimeout: "2s" });
      brokers.push(broker);
      const events = record(broker);
      const [outcome] = await broker.publish("q", [msg("x")]);
      expect(outcome?.ok).toBe(false);
      const publishError = outcome?.ok === false ? outcome.error : undefined;
      expect(publishError?.code).toBe("broker-connection");
      const countsError = await broker.counts("q").then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(countsError).toBeDefined();
      const everything = [inspect(publishError, { depth: 10 }), inspect(countsError, { depth: 10 }), JSON.stringify(events)].join("\n");
      expect(everything).toContain("WRONGPASS");
      expect(everything).not.toContain(password);
    });
  });
});
