// The job-semantics groups on NATS JetStream with a Redis store: every client, worker and admin of
// a case shares one store, under a prefix of its own so that one case's sweeper or pruner lease
// never holds up another's. The stream and every key go afterwards. The transport groups do not
// change with a store: conformance.test.ts runs them.
import { brokerUrlFromEnv, jobSemanticsGroups } from "@jobs/conformance";
import { createRedisStore } from "@jobs/redis";
import { Redis } from "ioredis";
import { afterAll, describe } from "vitest";
import { createNatsBroker } from "../src/index.js";
import { deleteStreams, uniqueTopology } from "./support.js";

const url = brokerUrlFromEnv("JOBS_NATS_URL");
const redisUrl = brokerUrlFromEnv("JOBS_REDIS_URL");
const keys = `jobs-test-nats-store-${process.pid}-${Date.now().toString(36)}`;
const topology = uniqueTopology("store");
let stores = 0;

describe.skipIf(url === undefined || redisUrl === undefined)("nats + redis store [needs JOBS_NATS_URL and JOBS_REDIS_URL]", () => {
  afterAll(async () => {
    await deleteStreams(url as string, [topology.stream]);
    await deleteKeys(redisUrl as string, keys);
  });
  const options = {
    name: "nats + redis store",
    createBroker: () => createNatsBroker({ ...topology, url: url ?? "nats://127.0.0.1:4222" }),
    createStore: () => createRedisStore({ url: redisUrl as string, prefix: `${keys}:store-${++stores}`, logger: false }),
  };
  describe(`conformance: ${options.name}`, () => {
    for (const register of jobSemanticsGroups) register(options);
  });
});

/** Deletes every key under `<prefix>:` (the stores of this run). */
async function deleteKeys(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    for await (const batch of redis.scanStream({ match: `${prefix}:*`, count: 1000 }) as AsyncIterable<string[]>) {
      if (batch.length > 0) await redis.del(...batch);
    }
  } finally {
    redis.disconnect();
  }
}
