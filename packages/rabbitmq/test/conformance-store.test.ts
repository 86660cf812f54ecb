// The job-semantics groups on RabbitMQ with a Redis store (Celery's broker + result backend): every
// client, worker and admin of a case shares one store, under a prefix of its own so that one case's
// sweeper or pruner lease never holds up another's. The queues and every key go afterwards. The
// transport groups do not change with a store: conformance.test.ts runs them.
import { brokerUrlFromEnv, jobSemanticsGroups } from "@jobs/conformance";
import { createRedisStore } from "@jobs/redis";
import { Redis } from "ioredis";
import { afterAll, describe } from "vitest";
import { Tracker, uniquePrefix } from "./support.js";

/** Deleting every queue a run declared takes seconds on a loaded machine (see conformance.test.ts). */
const CLEAN_UP_MS = 120_000;
const PLACEHOLDER = "amqp://127.0.0.1:5672";

const url = brokerUrlFromEnv("JOBS_RABBITMQ_URL");
const redisUrl = brokerUrlFromEnv("JOBS_REDIS_URL");
const keys = `jobs-test-rabbitmq-store-${process.pid}-${Date.now().toString(36)}`;
let stores = 0;

describe.skipIf(url === undefined || redisUrl === undefined)("rabbitmq + redis store [needs JOBS_RABBITMQ_URL and JOBS_REDIS_URL]", () => {
  const tracker = new Tracker(url ?? PLACEHOLDER, uniquePrefix("st"));
  afterAll(() => tracker.cleanUp(), CLEAN_UP_MS);
  afterAll(() => deleteKeys(redisUrl as string, keys));
  const options = {
    name: "rabbitmq + redis store",
    createBroker: () => tracker.broker(),
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
