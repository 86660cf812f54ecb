// The job-semantics groups on Redis with a Redis store (the same server): every client, worker and
// admin of a case shares one store, under a prefix of its own so that one case's sweeper or pruner
// lease never holds up another's. Everything goes with the run's prefix afterwards. The transport
// groups do not change with a store: conformance.test.ts runs them.
import { brokerUrlFromEnv, jobSemanticsGroups } from "@jobs/conformance";
import { afterAll, describe, it } from "vitest";
import { createRedisBroker, createRedisStore } from "../src/index.js";
import { deleteKeys } from "./support.js";

const url = brokerUrlFromEnv("JOBS_REDIS_URL");
const prefix = `jobs-test-bs-${process.pid}-${Date.now().toString(36)}`;
let stores = 0;

if (url === undefined) {
  describe.skip("redis + redis store [needs JOBS_REDIS_URL]", () => {
    it("job-semantics groups with a store", () => {});
  });
} else {
  afterAll(async () => {
    await deleteKeys(url, prefix);
  });
  const options = {
    name: "redis + redis store",
    createBroker: () => createRedisBroker({ url, prefix, heartbeat: "1s", heartbeatTimeout: "2s", logger: false }),
    createStore: () => createRedisStore({ url, prefix: `${prefix}:store-${++stores}`, logger: false }),
  };
  describe(`conformance: ${options.name}`, () => {
    for (const register of jobSemanticsGroups) register(options);
  });
}
