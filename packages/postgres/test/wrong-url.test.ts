// A wrong URL or wrong credentials: the first enqueue, worker start and admin call each fail with a
// definite, typed error within the connect timeout, never "may or may not be stored", and never
// with the password in it.
import {
  expectDefiniteConnectionError,
  type FirstCallOutcome,
  firstCalls,
  freePort,
  type PrivatePostgres,
  startPrivatePostgres,
} from "@jobs/conformance";
import { createAdmin, type JobsError } from "@jobs/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresBroker } from "../src/index.js";

const CONNECT_TIMEOUT_MS = 2_000;
const SECRET = "wrong-Secret-7c41";
const expectDefinite = (results: readonly FirstCallOutcome[], expected: { retryable: boolean; mentions: string }): void =>
  expectDefiniteConnectionError(results, { ...expected, secret: SECRET, connectTimeoutMs: CONNECT_TIMEOUT_MS });

describe("postgres adapter with a wrong URL or wrong credentials", { timeout: 20_000 }, () => {
  let server: PrivatePostgres;
  beforeAll(async () => {
    server = await startPrivatePostgres();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("a closed port: BrokerConnectionError (retryable) naming the host, nothing ambiguous", async () => {
    const port = await freePort();
    const results = await firstCalls(() =>
      createPostgresBroker({ url: `postgres://app:${SECRET}@127.0.0.1:${port}/app`, connectTimeout: CONNECT_TIMEOUT_MS, logger: false }),
    );
    expectDefinite(results, { retryable: true, mentions: `cannot connect to 127.0.0.1:${port}` });
    for (const { error } of results) expect((error as JobsError).message).toContain("nothing was sent");
  });

  it("an unresolvable host: BrokerConnectionError (retryable) naming the host", async () => {
    const results = await firstCalls(() =>
      createPostgresBroker({ url: "postgres://nonexistent.invalid:5432/app", connectTimeout: CONNECT_TIMEOUT_MS, logger: false }),
    );
    expectDefinite(results, { retryable: true, mentions: "nonexistent.invalid" });
  });

  it("a wrong password (private server, scram-sha-256): non-retryable BrokerConnectionError, password redacted", async () => {
    const results = await firstCalls(() =>
      createPostgresBroker({
        url: `postgres://postgres:${SECRET}@127.0.0.1:${server.port}/postgres`,
        connectTimeout: CONNECT_TIMEOUT_MS,
        logger: false,
      }),
    );
    expectDefinite(results, { retryable: false, mentions: `127.0.0.1:${server.port} refused the credentials` });
  });

  it("the right password works on the same server (the private server is not broken)", async () => {
    const broker = createPostgresBroker({ url: server.url, connectTimeout: CONNECT_TIMEOUT_MS });
    try {
      expect(await createAdmin({ broker }).counts("wrongurl")).toEqual({ waiting: 0, delayed: 0, active: 0, dead: 0 });
    } finally {
      await broker.close();
    }
  });
});
