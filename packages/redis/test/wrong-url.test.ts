// A wrong URL or wrong credentials: the first enqueue, worker start and admin call each fail with a
// definite, typed error within the connect timeout, never "may or may not be stored", and never
// with the password in it.
import { inspect } from "node:util";
import { freePort, type PrivateServer, startPrivateRedis } from "@jobs/conformance";
import { type Broker, BrokerConnectionError, createAdmin, createClient, createWorker, defineJob, JobsError } from "@jobs/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisBroker } from "../src/index.js";

const CONNECT_TIMEOUT_MS = 2_000;
const SECRET = "wrong-Secret-7c41";
const job = defineJob<{ n: number }>({ name: "wrong-url", queue: "wrongurl" });

interface Settled {
  readonly call: string;
  readonly error: unknown;
  readonly ms: number;
}

/** The first enqueue, worker start and admin counts, each on a broker of its own, run together. */
async function firstCalls(open: () => Broker): Promise<Settled[]> {
  const calls: Record<string, (broker: Broker) => Promise<unknown>> = {
    enqueue: (broker) => createClient({ broker }).enqueue(job, { n: 1 }),
    start: (broker) =>
      createWorker({ broker })
        .handle(job, () => {})
        .start(),
    counts: (broker) => createAdmin({ broker }).counts("wrongurl"),
  };
  return Promise.all(
    Object.entries(calls).map(async ([call, run]) => {
      const broker = open();
      const started = performance.now();
      const error = await run(broker).then(
        () => undefined,
        (e: unknown) => e,
      );
      const ms = performance.now() - started;
      await broker.close();
      return { call, error, ms };
    }),
  );
}

function expectDefinite(results: readonly Settled[], expected: { retryable: boolean; mentions: string }): void {
  expect(results.map((r) => r.call)).toEqual(["enqueue", "start", "counts"]);
  for (const { call, error, ms } of results) {
    expect(error, call).toBeInstanceOf(BrokerConnectionError);
    const e = error as JobsError;
    expect(JobsError.isInstance(e)).toBe(true);
    expect(e.code, call).toBe("broker-connection");
    expect(e.retryable, call).toBe(expected.retryable);
    expect(e.message, call).toContain(expected.mentions);
    for (const text of [e.message, String(e.cause), inspect(e, { depth: 10 })]) expect(text, call).not.toContain(SECRET);
    // Settled within the connect timeout (plus a generous margin for a busy machine).
    expect(ms, call).toBeLessThan(CONNECT_TIMEOUT_MS + 5_000);
  }
}

describe("redis adapter with a wrong URL or wrong credentials", { timeout: 15_000 }, () => {
  let server: PrivateServer;
  beforeAll(async () => {
    server = await startPrivateRedis(["--requirepass", "the-right-one"]);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("a closed port: BrokerConnectionError (retryable) naming the host, nothing ambiguous", async () => {
    const port = await freePort();
    const results = await firstCalls(() =>
      createRedisBroker({ url: `redis://:${SECRET}@127.0.0.1:${port}`, connectTimeout: CONNECT_TIMEOUT_MS }),
    );
    expectDefinite(results, { retryable: true, mentions: `cannot connect to 127.0.0.1:${port}` });
    for (const { error } of results) expect((error as JobsError).message).toContain("nothing was sent");
  });

  it("an unresolvable host: BrokerConnectionError (retryable) naming the host", async () => {
    const results = await firstCalls(() =>
      createRedisBroker({ url: "redis://nonexistent.invalid:6379", connectTimeout: CONNECT_TIMEOUT_MS }),
    );
    expectDefinite(results, { retryable: true, mentions: "nonexistent.invalid" });
  });

  it("a wrong password (private redis-server --requirepass): non-retryable BrokerConnectionError, password redacted", async () => {
    const results = await firstCalls(() =>
      createRedisBroker({ url: `redis://:${SECRET}@127.0.0.1:${server.port}`, connectTimeout: CONNECT_TIMEOUT_MS }),
    );
    expectDefinite(results, { retryable: false, mentions: `127.0.0.1:${server.port} refused the credentials` });
  });

  it("a wrong user and password (ACL): non-retryable BrokerConnectionError", async () => {
    const results = await firstCalls(() =>
      createRedisBroker({ url: `redis://nobody:${SECRET}@127.0.0.1:${server.port}`, connectTimeout: CONNECT_TIMEOUT_MS }),
    );
    expectDefinite(results, { retryable: false, mentions: "WRONGPASS" });
  });

  it("no password on a server that needs one (NOAUTH): non-retryable BrokerConnectionError", async () => {
    const results = await firstCalls(() =>
      createRedisBroker({ url: `redis://127.0.0.1:${server.port}`, connectTimeout: CONNECT_TIMEOUT_MS }),
    );
    expectDefinite(results, { retryable: false, mentions: "NOAUTH" });
  });

  it("the right password works on the same server (the private server is not broken)", async () => {
    const broker = createRedisBroker({ url: `redis://:the-right-one@127.0.0.1:${server.port}`, connectTimeout: CONNECT_TIMEOUT_MS });
    try {
      expect(await createAdmin({ broker }).counts("wrongurl")).toEqual({ waiting: 0, delayed: 0, active: 0, dead: 0 });
    } finally {
      await broker.close();
    }
  });
});
