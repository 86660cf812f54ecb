import {
  brokerUrlFromEnv,
  jobSemanticsFirstConnection,
  runConformance,
  startPrivateRedis,
  startPrivateServer,
  transportRestart,
} from "@jobs/conformance";
import { afterAll, describe, it } from "vitest";
import { createRedisBroker, type RedisBrokerOptions } from "../src/index.js";
import { deleteKeys, redisServerArgs } from "./support.js";

const url = brokerUrlFromEnv("JOBS_REDIS_URL");

// Every run writes under its own prefix, so runs (and other users of the Redis) never meet.
const prefix = `jobs-test-${process.pid}-${Date.now().toString(36)}`;
// Short heartbeats and reconnect backoff, so stalled links are recycled and restarts noticed quickly.
const fast: RedisBrokerOptions = { prefix, heartbeat: "1s", heartbeatTimeout: "2s", maxReconnectDelay: "500ms" };

if (url === undefined) {
  describe.skip("redis [needs JOBS_REDIS_URL]", () => {
    it("conformance suite, fault-proxy and restart cases", () => {});
  });
} else {
  const { hostname, port } = new URL(url);
  // What the run leaves behind (sequence counters, dedupe windows) goes with its prefix.
  afterAll(async () => {
    await deleteKeys(url, prefix);
  });
  runConformance({
    name: "redis",
    createBroker: (ctx) =>
      createRedisBroker({ ...fast, url: ctx?.endpoint === undefined ? url : `redis://${ctx.endpoint.host}:${ctx.endpoint.port}` }),
    endpoint: { host: hostname, port: Number(port || 6379) },
  });

  // Restarts hit a private redis-server (its own port and directory, AOF fsync on every write),
  // killed with SIGKILL and started again: never the machine's Redis.
  const server = await startPrivateServer({
    command: "redis-server",
    args: ({ port, dir }) =>
      redisServerArgs(port, dir, ["--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "noeviction"]),
  });
  afterAll(() => server.stop());
  describe("conformance: redis (private server, kill -9 and restart)", () => {
    transportRestart({
      name: "redis (private server, kill -9 and restart)",
      createBroker: () => createRedisBroker({ ...fast, url: `redis://127.0.0.1:${server.port}` }),
      restart: () => server.restart("SIGKILL"),
    });
  });

  // A server of its own without persistence, down while a new broker makes its first connection:
  // it has no dataset to load when it comes up (the AOF one above answers LOADING for a moment).
  const fresh = await startPrivateRedis();
  afterAll(() => fresh.stop());
  const onFresh = (): ReturnType<typeof createRedisBroker> =>
    createRedisBroker({ ...fast, url: `redis://127.0.0.1:${fresh.port}`, connectTimeout: "2s" });
  jobSemanticsFirstConnection({
    name: "redis (private server, down at first)",
    createBroker: onFresh,
    firstConnection: { createBroker: onFresh, stop: () => fresh.kill("SIGKILL"), start: () => fresh.start() },
  });
}
