// A wrong endpoint or missing credentials: the first enqueue, worker start and admin call each fail
// with a definite, typed error within the connect timeout, never "may or may not be stored", and
// never with the secret key in it. The emulator checks no credentials, so a refused signature
// (InvalidClientTokenId, SignatureDoesNotMatch) cannot be shown here; credentials that cannot be
// loaded at all take the same non-retryable path.

import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { freePort } from "@jobs/conformance";
import { type Broker, BrokerConnectionError, createAdmin, createClient, createWorker, defineJob, JobsError } from "@jobs/core";
import { describe, expect, it } from "vitest";
import { createSqsBroker, type SqsBrokerOptions } from "../src/index.js";
import { endpointUrl } from "./emulator.js";

const CONNECT_TIMEOUT_MS = 2_000;
const prefix = `wrongurl${randomBytes(3).toString("hex")}-`;
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

function options(endpoint: string, extra: Partial<SqsBrokerOptions> = {}): SqsBrokerOptions {
  return {
    endpoint,
    region: "us-east-1",
    prefix,
    connectTimeout: CONNECT_TIMEOUT_MS,
    requestTimeout: CONNECT_TIMEOUT_MS,
    waitTimeSeconds: 1,
    clientConfig: { credentials: { accessKeyId: "AKIAJOBSWRONGURL0001", secretAccessKey: SECRET }, maxAttempts: 1 },
    ...extra,
  };
}

describe("sqs adapter with a wrong endpoint or no credentials", { timeout: 15_000 }, () => {
  it("a closed port: BrokerConnectionError (retryable) naming the host, nothing ambiguous", async () => {
    const port = await freePort();
    const results = await firstCalls(() => createSqsBroker(options(`http://127.0.0.1:${port}`)));
    expectDefinite(results, { retryable: true, mentions: `127.0.0.1:${port}` });
  });

  it("an unresolvable host: BrokerConnectionError (retryable) naming the host", async () => {
    const results = await firstCalls(() => createSqsBroker(options("http://nonexistent.invalid:9324")));
    expectDefinite(results, { retryable: true, mentions: "nonexistent.invalid" });
  });

  it("credentials that cannot be loaded (a profile that does not exist): non-retryable BrokerConnectionError", async () => {
    const profile = `jobs-no-such-profile-${randomBytes(4).toString("hex")}`;
    const results = await firstCalls(() => createSqsBroker(options(endpointUrl, { clientConfig: { profile, maxAttempts: 1 } })));
    expectDefinite(results, { retryable: false, mentions: `${new URL(endpointUrl).host} refused the credentials` });
  });

  it("the same options with credentials work on the emulator (the endpoint is not broken)", async () => {
    const broker = createSqsBroker(options(endpointUrl));
    try {
      expect(await createAdmin({ broker }).counts("wrongurl")).toEqual({ waiting: 0, delayed: 0, active: 0, dead: 0 });
    } finally {
      await broker.close();
    }
  });
});
