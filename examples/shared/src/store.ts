// The job store of the records examples (each networked example's records.ts): Redis at JOBS_REDIS_URL (default: a local
// server). A networked store pairs with any broker: records live in Redis, messages in the broker.
import { createRedisStore, type RedisStore } from "@jobs/redis";
import { Redis } from "ioredis";
import type { RecordsTestStore } from "./records.js";

const url = process.env.JOBS_REDIS_URL ?? "redis://127.0.0.1:6379";

/** A Redis store; every key starts with `prefix` (one prefix on one server is one store). */
export function openStore(prefix = "jobs-example"): RedisStore {
  // A wrong URL fails the first call within connectTimeout, naming the host; warnings (a Redis
  // without an append-only file can lose acknowledged records) go to the logger.
  return createRedisStore({ url, prefix, connectTimeout: "5s", logger: console });
}

/** Deletes every key under `prefix`: a test's store leaves nothing behind on a shared server. */
export async function removeStore(prefix: string): Promise<void> {
  const redis = new Redis(url);
  try {
    for await (const keys of redis.scanStream({ match: `${prefix}:*`, count: 1000 }) as AsyncIterable<string[]>) {
      if (keys.length > 0) await redis.del(...keys);
    }
  } finally {
    redis.disconnect();
  }
}

/** The Redis store of one test run: opened under the run's prefix, every key removed after. */
export const redisTestStore: RecordsTestStore = { open: openStore, remove: removeStore };
