/**
 * Signed and encrypted jobs on Redis, read from Redis itself (docs/security.md): every key the
 * broker and its fused store wrote holds the payload sealed, never in clear, while the job waits,
 * after it ran, and as a dead letter. The conformance suite reads the same through the Broker
 * contract on every adapter; this reads the raw keys.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { brokerUrlFromEnv } from "@jobs/conformance";
import { type CodecOptions, createAdmin, createClient, createWorker, defineJob } from "@jobs/core";
import { waitFor } from "@jobs/core/testing";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { createRedisBroker, createRedisStore } from "../src/index.js";
import { deleteKeys } from "./support.js";

const found = brokerUrlFromEnv("JOBS_REDIS_URL");
const url = found ?? "redis://127.0.0.1:6379";
const prefix = `jobs-codec-${process.pid}-${Date.now().toString(36)}`;

afterAll(async () => {
  if (found !== undefined) await deleteKeys(url, prefix);
});

/** Every value under `prefix:`, whatever the key's type, as one text. */
async function dump(): Promise<string> {
  const redis = new Redis(url);
  try {
    const parts: string[] = [];
    for await (const keys of redis.scanStream({ match: `${prefix}:*`, count: 1000 }) as AsyncIterable<string[]>) {
      for (const key of keys) {
        const type = await redis.type(key);
        if (type === "string") parts.push(String(await redis.get(key)));
        else if (type === "list") parts.push(...(await redis.lrange(key, 0, -1)));
        else if (type === "hash") parts.push(...Object.entries(await redis.hgetall(key)).flat());
        else if (type === "zset") parts.push(...(await redis.zrange(key, "0", "-1")));
        else if (type === "set") parts.push(...(await redis.smembers(key)));
        else if (type === "stream") parts.push(...(await redis.xrange(key, "-", "+")).flat(2));
        else parts.push(`<${type}>`);
      }
    }
    return parts.join("\n");
  } finally {
    redis.disconnect();
  }
}

describe.skipIf(found === undefined)("redis: signed and encrypted jobs, read from Redis", { timeout: 20_000 }, () => {
  it("keeps the payload sealed in the queue, the record and the dead letter; the worker gets it in clear", async () => {
    const codec: CodecOptions = {
      signing: { keys: { s1: randomBytes(32) }, current: "s1" },
      encryption: { keys: { e1: randomBytes(32) }, current: "e1" },
    };
    const broker = createRedisBroker({ url, prefix });
    const store = createRedisStore({ url, prefix });
    const job = defineJob<{ secret: string; fail: boolean }>({
      name: "codec.redis",
      queue: `codec-${randomUUID().slice(0, 8)}`,
      maxAttempts: 1,
    });
    const client = createClient({ broker, store, codec });
    const worker = createWorker({ broker, store, codec }).handle(job, (p) => {
      if (p.fail) throw new Error("failing on purpose");
      return p.secret.length;
    });
    try {
      const canary = `canary-${randomUUID()}`;
      const waiting = await client.enqueue(job, { secret: canary, fail: false });
      const failing = await client.enqueue(job, { secret: canary, fail: true });
      let raw = await dump();
      expect(raw).toContain('"$enc":"v1.e1.');
      expect(raw).toContain(',"sig":"s1.');
      expect(raw).toContain(waiting.id);
      expect(raw).not.toContain(canary);

      await worker.start();
      expect(await waiting.result()).toBe(canary.length);
      await waitFor(async () => (await client.getJob(failing.id))?.status === "dead", { message: "waiting for the dead job" });
      const letters = await waitFor(async () => {
        const list = await createAdmin({ broker, codec }).listDeadLetters(job.queue);
        return list.length > 0 ? list : undefined;
      });
      expect(letters.map((l) => [l.id, l.reason, l.payload])).toEqual([[failing.id, "max-attempts", { secret: canary, fail: true }]]);
      raw = await dump();
      expect(raw).toContain(failing.id);
      expect(raw).not.toContain(canary);
      expect((await client.getJob(failing.id))?.payload).toEqual({ secret: canary, fail: true });
    } finally {
      await worker.close();
      await client.close();
      await broker.close();
      await store.close();
    }
  });
});
