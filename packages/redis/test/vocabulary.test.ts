// The shared option vocabulary on Redis: `connectionOptions` and `heartbeat` (with their old names
// as deprecated aliases, warned once), and `client` checked by its shape rather than its class.
import { randomUUID } from "node:crypto";
import { brokerUrlFromEnv } from "@jobs/conformance";
import type { Delivery, OutgoingMessage } from "@jobs/core/adapter";
import { jobsWarningsOf, waitFor } from "@jobs/core/testing";
import { Redis, type RedisOptions } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { createRedisBroker, type RedisBroker } from "../src/index.js";
import { resolveRedisOptions } from "../src/options.js";
import { deleteKeys } from "./support.js";

const url = brokerUrlFromEnv("JOBS_REDIS_URL");
const prefix = `jobs-vocab-${process.pid}-${Date.now().toString(36)}`;

const msg = (body: string): OutgoingMessage => ({ id: randomUUID(), body, priority: 2, delayMs: 0, dedupe: true });

describe("option names", () => {
  it("reads connectionOptions and heartbeat, and their deprecated names connection and heartbeatInterval with one warning each", async () => {
    const given: RedisOptions = { db: 0 };
    const current = resolveRedisOptions({ connectionOptions: given, heartbeat: "1234ms" });
    expect(current.connectionOptions).toBe(given);
    expect(current.heartbeatMs).toBe(1234);
    const warnings = await jobsWarningsOf(() => {
      for (let i = 0; i < 2; i++) {
        const old = resolveRedisOptions({ connection: given, heartbeatInterval: "4321ms" });
        expect(old.connectionOptions).toBe(given);
        expect(old.heartbeatMs).toBe(4321);
      }
    });
    expect(warnings.map((w) => [w.name, w.code])).toEqual([
      ["DeprecationWarning", "JOBS_DEP_REDIS_CONNECTION"],
      ["DeprecationWarning", "JOBS_DEP_REDIS_HEARTBEATINTERVAL"],
    ]);
    expect(warnings[0]?.message).toContain('use "connectionOptions"');
  });

  it("refuses an old and a new name together, naming the old one", () => {
    expect(() => createRedisBroker({ connection: {}, connectionOptions: {} })).toThrow('invalid option "connection"');
    expect(() => createRedisBroker({ heartbeatInterval: "1s", heartbeat: "1s" })).toThrow('invalid option "heartbeatInterval"');
  });

  it("refuses a client without the methods the broker calls, naming the first one missing", () => {
    expect(() => createRedisBroker({ client: {} as Redis })).toThrow(/invalid option "client".*no duplicate\(\)/);
    expect(() => createRedisBroker({ client: "redis://x" as unknown as Redis })).toThrow('invalid option "client"');
  });
});

describe.skipIf(url === undefined)("client by shape [needs JOBS_REDIS_URL]", () => {
  const brokers: RedisBroker[] = [];
  afterAll(async () => {
    await Promise.allSettled(brokers.map((b) => b.close()));
    await deleteKeys(url as string, prefix);
  });

  it("works with a client of another class that has ioredis's shape (as from a second installed copy)", async () => {
    const real = new Redis(url as string, { lazyConnect: true });
    /** Not an ioredis class: forwards what the broker calls on a template client. */
    class SecondCopy {
      readonly isCluster = false;
      duplicate = (override?: RedisOptions): Redis => real.duplicate(override);
      defineCommand = real.defineCommand.bind(real);
      blpop = real.blpop.bind(real);
      ping = real.ping.bind(real);
      info = real.info.bind(real);
      quit = real.quit.bind(real);
      disconnect = real.disconnect.bind(real);
      on = real.on.bind(real);
    }
    const client = new SecondCopy();
    expect(client instanceof Redis).toBe(false);
    const broker = createRedisBroker({ client: client as unknown as Redis, prefix, heartbeat: "1s" });
    brokers.push(broker);
    const queue = `shape-${randomUUID().slice(0, 8)}`;
    expect(await broker.publish(queue, [msg("via a look-alike client")])).toEqual([{ ok: true, duplicate: false }]);
    const seen: Delivery[] = [];
    await broker.consume(queue, { prefetch: 1, leaseMs: 30_000 }, (d) => seen.push(d));
    const delivery = await waitFor(() => seen[0], { timeout: 5_000, message: "no delivery" });
    expect(delivery.body).toBe("via a look-alike client");
    await delivery.ack();
    expect(await broker.counts(queue)).toEqual({ waiting: 0, delayed: 0, active: 0, dead: 0 });
    await broker.close();
    // The template is the caller's: never connected nor closed by the broker.
    expect(real.status).toBe("wait");
  });
});
