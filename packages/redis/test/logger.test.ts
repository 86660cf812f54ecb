// The adapter's own warnings reach the console once per code when nobody listens, and a logger
// when one is given; a URL's password never appears in either.
import { brokerUrlFromEnv, type PrivateServer, startPrivateServer } from "@jobs/conformance";
import type { LogFields, Logger } from "@jobs/core";
import { captureConsole, waitFor } from "@jobs/core/testing";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { createRedisBroker } from "../src/index.js";
import { redisServerArgs } from "./support.js";

const url = brokerUrlFromEnv("JOBS_REDIS_URL");
const SECRET = "r3dis-Pa55word-never-logged";

describe.skipIf(url === undefined)("redis: logging [needs JOBS_REDIS_URL]", { timeout: 30_000 }, () => {
  let server: PrivateServer | undefined;
  let warned: string[];
  let restore: () => void;
  beforeEach(() => {
    ({ warned, restore } = captureConsole());
  });
  afterEach(() => restore());
  afterAll(async () => {
    await server?.stop();
  });
  const evicting = async (): Promise<PrivateServer> => {
    server ??= await startPrivateServer({
      command: "redis-server",
      args: ({ port, dir }) =>
        redisServerArgs(port, dir, ["--maxmemory-policy", "allkeys-lru", "--appendonly", "no", "--requirepass", SECRET]),
    });
    return server;
  };

  it("prints JOBS_REDIS_EVICTION and JOBS_REDIS_NO_AOF once each on console.warn when nobody listens, without the password", async () => {
    const { port } = await evicting();
    const broker = createRedisBroker({ url: `redis://:${SECRET}@127.0.0.1:${port}` });
    try {
      await broker.counts("q");
      await waitFor(() => warned.length === 2, { timeout: 10_000, message: "expected two console warnings" });
      await broker.counts("q");
      expect(warned).toEqual([
        expect.stringMatching(/^\[jobs\] \[redis\] maxmemory-policy is "allkeys-lru".*\[JOBS_REDIS_EVICTION\]/),
        expect.stringMatching(/^\[jobs\] \[redis\] AOF is off.*\[JOBS_REDIS_NO_AOF\]/),
      ]);
      expect(warned.join("\n")).not.toContain(SECRET);
    } finally {
      await broker.close();
    }
  });

  it("gives them to the logger instead (code, source), and prints nothing", async () => {
    const { port } = await evicting();
    const entries: { fields: LogFields; message: string }[] = [];
    const logger: Logger = {
      warn: (fields, message) => entries.push({ fields, message }),
      error: (fields, message) => entries.push({ fields, message }),
    };
    const broker = createRedisBroker({ url: `redis://:${SECRET}@127.0.0.1:${port}`, logger });
    try {
      await waitFor(() => entries.length === 2, { timeout: 10_000, message: "expected two entries" });
      expect(entries.map((e) => `${e.fields.source} ${e.fields.code}`).sort()).toEqual([
        "redis JOBS_REDIS_EVICTION",
        "redis JOBS_REDIS_NO_AOF",
      ]);
      expect(JSON.stringify(entries)).not.toContain(SECRET);
      expect(warned).toEqual([]);
    } finally {
      await broker.close();
    }
  });
});
