// The job-semantics groups on SQS (standard queues) with a Redis store: every client, worker and
// admin of a case shares one store, under a prefix of its own so that one case's sweeper or pruner
// lease never holds up another's. Every key goes afterwards. With a store, caller-chosen ids work
// on standard queues too (the record dedupes them). The transport groups do not change with a
// store: conformance.test.ts runs them.
import { brokerUrlFromEnv, jobSemanticsGroups } from "@jobs/conformance";
import { createRedisStore } from "@jobs/redis";
import { Redis } from "ioredis";
import { afterAll, describe } from "vitest";
import { createSqsBroker } from "../src/index.js";
import { credentials, endpointUrl, onEmulator } from "./emulator.js";

const redisUrl = brokerUrlFromEnv("JOBS_REDIS_URL");
const keys = `jobs-test-sqs-store-${process.pid}-${Date.now().toString(36)}`;
let stores = 0;

describe.skipIf(redisUrl === undefined)("sqs + redis store [needs JOBS_REDIS_URL]", () => {
  afterAll(() => deleteKeys(redisUrl as string, keys));
  // As in conformance.test.ts: waits of 1 s, because local-aws-sqs answers a long poll only when the batch is full or the wait is over.
  const options = {
    name: "sqs + redis store",
    createBroker: () =>
      createSqsBroker({
        url: endpointUrl,
        clientConfig: { credentials },
        waitTimeSeconds: 1,
        requestTimeout: "3s",
        countsIncludeInFlight: onEmulator,
      }),
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
