import { Redis } from "ioredis";

export { redisServerArgs } from "@jobs/conformance";

/** Deletes every key under `<prefix>:` on the server at `url` (what a test run leaves behind). */
export async function deleteKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url);
  try {
    for await (const keys of redis.scanStream({ match: `${prefix}:*`, count: 1000 }) as AsyncIterable<string[]>) {
      if (keys.length > 0) await redis.del(...keys);
    }
  } finally {
    redis.disconnect();
  }
}
