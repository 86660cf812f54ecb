// A wrong URL or wrong credentials: the first enqueue, worker start and admin call each fail with a
// definite, typed error within the connect timeout, never "may or may not be stored", and never
// with the password in it.
import { brokerUrlFromEnv, expectDefiniteConnectionError, type FirstCallOutcome, firstCalls, freePort } from "@jobs/conformance";
import type { JobsError } from "@jobs/core";
import { describe, expect, it } from "vitest";
import { createRabbitmqBroker } from "../src/index.js";

const url = brokerUrlFromEnv("JOBS_RABBITMQ_URL");
const CONNECT_TIMEOUT_MS = 2_000;
const SECRET = "wrong-Secret-7c41";
const expectDefinite = (results: readonly FirstCallOutcome[], expected: { retryable: boolean; mentions: string }): void =>
  expectDefiniteConnectionError(results, { ...expected, secret: SECRET, connectTimeoutMs: CONNECT_TIMEOUT_MS });

describe("rabbitmq adapter with a wrong URL or wrong credentials", { timeout: 15_000 }, () => {
  it("a closed port: BrokerConnectionError (retryable) naming the host, nothing ambiguous", async () => {
    const port = await freePort();
    const results = await firstCalls(() =>
      createRabbitmqBroker({ url: `amqp://guest:${SECRET}@127.0.0.1:${port}`, connectTimeout: CONNECT_TIMEOUT_MS }),
    );
    expectDefinite(results, { retryable: true, mentions: `cannot connect to 127.0.0.1:${port}` });
    for (const { error } of results) expect((error as JobsError).message).toContain("nothing was sent");
  });

  it("an unresolvable host: BrokerConnectionError (retryable) naming the host", async () => {
    const results = await firstCalls(() =>
      createRabbitmqBroker({ url: "amqp://guest:guest@nonexistent.invalid:5672", connectTimeout: CONNECT_TIMEOUT_MS }),
    );
    expectDefinite(results, { retryable: true, mentions: "nonexistent.invalid" });
  });

  it.skipIf(url === undefined)(
    "a wrong password (ACCESS_REFUSED): non-retryable BrokerConnectionError, password redacted [needs JOBS_RABBITMQ_URL]",
    async () => {
      const u = new URL(url as string);
      u.username = "guest";
      u.password = SECRET;
      const results = await firstCalls(() => createRabbitmqBroker({ url: u.toString(), connectTimeout: CONNECT_TIMEOUT_MS }));
      expectDefinite(results, { retryable: false, mentions: `${u.hostname}:${u.port || "5672"} refused the credentials` });
      for (const { error } of results) expect((error as JobsError).message).toContain("ACCESS_REFUSED");
    },
  );
});
