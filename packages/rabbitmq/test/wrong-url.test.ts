// A wrong URL or wrong credentials: the first enqueue, worker start and admin call each fail with a
// definite, typed error within the connect timeout, never "may or may not be stored", and never
// with the password in it.
import { inspect } from "node:util";
import { brokerUrlFromEnv, freePort } from "@jobs/conformance";
import { type Broker, BrokerConnectionError, createAdmin, createClient, createWorker, defineJob, JobsError } from "@jobs/core";
import { describe, expect, it } from "vitest";
import { createRabbitMQBroker } from "../src/index.js";

const url = brokerUrlFromEnv("JOBS_RABBITMQ_URL");
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

describe("rabbitmq adapter with a wrong URL or wrong credentials", { timeout: 15_000 }, () => {
  it("a closed port: BrokerConnectionError (retryable) naming the host, nothing ambiguous", async () => {
    const port = await freePort();
    const results = await firstCalls(() =>
      createRabbitMQBroker({ url: `amqp://guest:${SECRET}@127.0.0.1:${port}`, connectTimeout: CONNECT_TIMEOUT_MS }),
    );
    expectDefinite(results, { retryable: true, mentions: `cannot connect to 127.0.0.1:${port}` });
    for (const { error } of results) expect((error as JobsError).message).toContain("nothing was sent");
  });

  it("an unresolvable host: BrokerConnectionError (retryable) naming the host", async () => {
    const results = await firstCalls(() =>
      createRabbitMQBroker({ url: "amqp://guest:guest@nonexistent.invalid:5672", connectTimeout: CONNECT_TIMEOUT_MS }),
    );
    expectDefinite(results, { retryable: true, mentions: "nonexistent.invalid" });
  });

  it.skipIf(url === undefined)(
    "a wrong password (ACCESS_REFUSED): non-retryable BrokerConnectionError, password redacted [needs JOBS_RABBITMQ_URL]",
    async () => {
      const u = new URL(url as string);
      u.username = "guest";
      u.password = SECRET;
      const results = await firstCalls(() => createRabbitMQBroker({ url: u.toString(), connectTimeout: CONNECT_TIMEOUT_MS }));
      expectDefinite(results, { retryable: false, mentions: `${u.hostname}:${u.port || "5672"} refused the credentials` });
      for (const { error } of results) expect((error as JobsError).message).toContain("ACCESS_REFUSED");
    },
  );
});
