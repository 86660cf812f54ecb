// Redis Cluster: a private 3-node cluster (free ports, no persistence), started and stopped here,
// never the machine's Redis. The broker takes an ioredis Cluster as its `client`: every key of a
// queue is hash-tagged into one slot, so scripts and BLPOPs route like any single-slot command.
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import { type PrivateServer, runConformance, startPrivateServer } from "@jobs/conformance";
import { createClient, createWorker, defineJob, NonRetryableError } from "@jobs/core";
import { waitFor, waitForEvent } from "@jobs/core/testing";
import { Cluster } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { createRedisBroker, createRedisStore, type RedisBroker, type RedisBrokerOptions } from "../src/index.js";
import { redisServerArgs } from "./support.js";

const run = promisify(execFile);

const nodes: PrivateServer[] = [];
for (let i = 0; i < 3; i++) {
  nodes.push(
    await startPrivateServer({
      command: "redis-server",
      args: ({ port, dir }) =>
        redisServerArgs(port, dir, [
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          `${dir}/nodes-${port}.conf`,
          "--appendonly",
          "no",
          "--maxmemory-policy",
          "noeviction",
        ]),
    }),
  );
}
afterAll(() => Promise.all(nodes.map((n) => n.stop())));
await run("redis-cli", ["--cluster", "create", ...nodes.map((n) => `127.0.0.1:${n.port}`), "--cluster-replicas", "0", "--cluster-yes"]);
// Every node must agree that all 16384 slots are served before the first command.
await waitFor(
  async () => {
    for (const n of nodes) {
      const { stdout } = await run("redis-cli", ["-p", String(n.port), "cluster", "info"]);
      if (!/cluster_state:ok/.test(stdout) || !/cluster_slots_ok:16384/.test(stdout)) return false;
    }
    return true;
  },
  { timeout: 30_000, message: "the private cluster never became ready" },
);

/** A template Cluster client: lazy, so only the broker's duplicates ever connect. */
const template = new Cluster(
  nodes.map((n) => ({ host: "127.0.0.1", port: n.port })),
  { lazyConnect: true },
);
const prefix = `jobs-cluster-${process.pid}`;
const fast: RedisBrokerOptions = { prefix, heartbeat: "1s", heartbeatTimeout: "2s", maxReconnectDelay: "500ms", checkServerConfig: false };

const opened: RedisBroker[] = [];
afterAll(() => Promise.allSettled(opened.map((b) => b.close())));
function open(): RedisBroker {
  const broker = createRedisBroker({ ...fast, client: template });
  opened.push(broker);
  return broker;
}

describe("redis cluster (private 3 nodes)", () => {
  it("spreads queues over the nodes, and runs, retries, delays, dead-letters and counts jobs on every one", async () => {
    // Enough queues that, by their hash tags, they land on all three nodes.
    const queues = Array.from({ length: 6 }, (_, i) => `cl${i}-${randomUUID().slice(0, 6)}`);
    const producer = createClient({ broker: open() });
    const worker = createWorker({ broker: open(), queues, concurrency: 4, lease: "30s" });
    const done = new Map<string, string[]>();
    for (const queue of queues) {
      const ok = defineJob<{ n: number }>({ name: `ok.${queue}`, queue });
      const flaky = defineJob<{ n: number }>({ name: `flaky.${queue}`, queue, backoff: { type: "fixed", delay: "50ms" }, maxAttempts: 3 });
      const bad = defineJob<{ n: number }>({ name: `bad.${queue}`, queue });
      let flakyRuns = 0;
      worker.handle(ok, ({ n }) => {
        done.set(queue, [...(done.get(queue) ?? []), `ok${n}`]);
      });
      worker.handle(flaky, () => {
        flakyRuns++;
        if (flakyRuns < 2) throw new Error("first attempt fails");
        done.set(queue, [...(done.get(queue) ?? []), "flaky"]);
      });
      worker.handle(bad, () => {
        throw new NonRetryableError("never");
      });
      await producer.enqueue(ok, { n: 1 });
      await producer.enqueue(ok, { n: 2 }, { delay: "300ms" });
      await producer.enqueue(flaky, { n: 3 });
      await producer.enqueue(bad, { n: 4 });
    }
    const broker = open();
    for (const queue of queues) expect((await broker.counts(queue)).waiting + (await broker.counts(queue)).delayed).toBe(4);
    const retried = waitForEvent(worker, "job.retrying", () => true, { timeout: 10_000 });
    await worker.start();
    try {
      await retried;
      await waitFor(() => queues.every((q) => (done.get(q) ?? []).length === 3), { timeout: 20_000, message: "jobs did not all run" });
      for (const queue of queues) {
        expect([...(done.get(queue) ?? [])].sort()).toEqual(["flaky", "ok1", "ok2"]);
        await waitFor(async () => (await broker.counts(queue)).dead === 1, { timeout: 10_000, message: `no dead letter on ${queue}` });
        expect(await broker.counts(queue)).toEqual({ waiting: 0, delayed: 0, active: 0, dead: 1 });
      }
    } finally {
      await worker.close();
    }
    // The queues really are on several nodes: each node holds the keys of some of them.
    const holders = new Set<number>();
    for (const n of nodes) {
      const { stdout } = await run("redis-cli", ["-p", String(n.port), "--scan", "--pattern", `${prefix}:*`]);
      if (stdout.trim() !== "") holders.add(n.port);
    }
    expect(holders.size).toBeGreaterThan(1);
  });
});

describe("redis store on a cluster (private 3 nodes)", () => {
  it("runs every script in the store's one slot through a Cluster client, and watch hears a finish", async () => {
    const store = createRedisStore({ ...fast, prefix: `${prefix}-store`, client: template });
    const other = createRedisStore({ ...fast, prefix: `${prefix}-store`, client: template });
    try {
      const heard: string[] = [];
      await store.watch((id, status) => heard.push(`${status} ${id}`));
      const record = (id: string) => ({
        id,
        name: "n",
        queue: "q",
        status: "waiting" as const,
        attempt: 1,
        maxAttempts: 3,
        priority: "normal" as const,
        tags: ["t"],
        payloadJson: "{}",
        enqueuedAt: 1,
        runAt: 1,
        timeout: 1000,
        gen: 1,
      });
      expect(await other.insert([record("a"), record("b")])).toEqual(["inserted", "inserted"]);
      await other.markPublished([{ id: "a", gen: 1 }]);
      expect(await other.claim([{ id: "a", gen: 1, ttlMs: 60_000, worker: "w" }])).toEqual([
        { outcome: "claimed", fence: 1, claims: 1, cancelRequested: false },
      ]);
      expect(await other.renew([{ id: "a", fence: 1, ttlMs: 60_000 }])).toEqual([{ ok: true, cancelRequested: false }]);
      expect(await other.progress("a", 1, "1")).toBe(true);
      expect(await other.finish([{ id: "a", fence: 1, status: "succeeded", resultJson: "2" }])).toEqual([true]);
      expect(await other.cancel("b")).toEqual({ outcome: "cancelled" });
      expect(await other.transition({ id: "b", from: ["cancelled"], to: "waiting", bumpGen: true })).toMatchObject({ gen: 2 });
      expect((await other.unpublished(0, 10)).map((j) => j.id)).toEqual(["b"]);
      expect((await other.list({ limit: 10, tag: "t", status: "succeeded" })).jobs.map((j) => j.id)).toEqual(["a"]);
      expect(await other.lease("sweeper", "me", 60_000)).toBe(true);
      expect((await other.get("a"))?.resultJson).toBe("2");
      expect(await other.prune({ name: "n", status: "succeeded", keep: 0, limit: 10 })).toBe(1);
      await waitFor(() => heard.length === 2, { message: `heard ${JSON.stringify(heard)}` });
      expect(heard).toEqual(["succeeded a", "cancelled b"]);
    } finally {
      await Promise.all([store.close(), other.close()]);
    }
  });
});

runConformance({ name: "redis (cluster of 3)", createBroker: () => open() });
