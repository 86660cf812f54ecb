// The store conformance suite on Redis: instances share the server at JOBS_REDIS_URL under one
// prefix (removed afterwards); the restart cases run on a private redis-server with AOF on and
// appendfsync always, killed and started again by the suite.
import { brokerUrlFromEnv, type PrivateServer, runStoreConformance, startPrivateRedis } from "@jobs/conformance";
import { afterAll, describe } from "vitest";
import { createRedisStore, type RedisStore, type RedisStoreOptions } from "../src/index.js";
import { deleteKeys } from "./support.js";

const url = brokerUrlFromEnv("JOBS_REDIS_URL");
const prefix = `jobs-store-suite-${process.pid}-${Date.now().toString(36)}`;
const stores: RedisStore[] = [];
const open = (storeUrl: string, options: RedisStoreOptions = {}): RedisStore => {
  const store = createRedisStore({ url: storeUrl, prefix, logger: false, ...options });
  stores.push(store);
  return store;
};

// Started before the cases are collected: the suite reads the restart store's options then.
const server: PrivateServer | undefined =
  url === undefined ? undefined : await startPrivateRedis(["--appendonly", "yes", "--appendfsync", "always"]);
afterAll(async () => {
  await Promise.allSettled(stores.map((s) => s.close()));
  await server?.stop();
  if (url !== undefined) await deleteKeys(url, prefix);
});

describe.skipIf(url === undefined)("redis store [needs JOBS_REDIS_URL]", () => {
  runStoreConformance({
    name: "redis",
    createStore: () => open(url as string),
    restart: {
      // During the outage a call waits in ioredis' offline queue until requestTimeout, then rejects (retryable).
      createStore: () => open(`redis://127.0.0.1:${(server as PrivateServer).port}`, { requestTimeout: "2s", maxReconnectDelay: "200ms" }),
      kill: async () => {
        await (server as PrivateServer).kill();
      },
      start: async () => {
        await (server as PrivateServer).start();
      },
    },
  });
});
