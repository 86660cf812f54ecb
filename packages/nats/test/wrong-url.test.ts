// A wrong URL or wrong credentials: the first enqueue, worker start and admin call each fail with a
// definite, typed error within the connect timeout, never "may or may not be stored", and never
// with the password in it.
import { expectDefiniteConnectionError, type FirstCallOutcome, firstCalls, freePort, type PrivateServer } from "@jobs/conformance";
import { createAdmin, type JobsError } from "@jobs/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNatsBroker } from "../src/index.js";
import { startPrivateNats, uniqueTopology } from "./support.js";

const CONNECT_TIMEOUT_MS = 2_000;
const SECRET = "wrong-Secret-7c41";
const expectDefinite = (results: readonly FirstCallOutcome[], expected: { retryable: boolean; mentions: string }): void =>
  expectDefiniteConnectionError(results, { ...expected, secret: SECRET, connectTimeoutMs: CONNECT_TIMEOUT_MS });

describe("nats adapter with a wrong URL or wrong credentials", { timeout: 15_000 }, () => {
  let server: PrivateServer;
  beforeAll(async () => {
    server = await startPrivateNats(["--user", "jobs", "--pass", "the-right-one"]);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("a closed port: BrokerConnectionError (retryable) naming the server, nothing ambiguous", async () => {
    const port = await freePort();
    const results = await firstCalls(() =>
      createNatsBroker({ url: `nats://jobs:${SECRET}@127.0.0.1:${port}`, connectTimeout: CONNECT_TIMEOUT_MS }),
    );
    expectDefinite(results, { retryable: true, mentions: `cannot connect to nats://jobs:***@127.0.0.1:${port}` });
    for (const { error } of results) expect((error as JobsError).message).toContain("nothing was sent");
  });

  it("an unresolvable host: BrokerConnectionError (retryable) naming the server", async () => {
    const results = await firstCalls(() =>
      createNatsBroker({ url: "nats://nonexistent.invalid:4222", connectTimeout: CONNECT_TIMEOUT_MS }),
    );
    expectDefinite(results, { retryable: true, mentions: "nonexistent.invalid" });
  });

  it("a wrong password (private nats-server --user --pass): non-retryable BrokerConnectionError, password redacted", async () => {
    const results = await firstCalls(() =>
      createNatsBroker({ url: `nats://jobs:${SECRET}@127.0.0.1:${server.port}`, connectTimeout: CONNECT_TIMEOUT_MS }),
    );
    expectDefinite(results, { retryable: false, mentions: `127.0.0.1:${server.port} refused the credentials` });
    for (const { error } of results) expect((error as JobsError).message).toContain("Authorization Violation");
  });

  it("no credentials at all on a server that needs them: non-retryable", async () => {
    const results = await firstCalls(() =>
      createNatsBroker({ url: `nats://127.0.0.1:${server.port}`, connectTimeout: CONNECT_TIMEOUT_MS }),
    );
    expectDefinite(results, { retryable: false, mentions: "refused the credentials" });
  });

  it("tls:// on a server without TLS: non-retryable BrokerConnectionError at once, no plaintext fallback, password redacted", async () => {
    const results = await firstCalls(() =>
      createNatsBroker({ url: `tls://jobs:${SECRET}@127.0.0.1:${server.port}`, connectTimeout: CONNECT_TIMEOUT_MS }),
    );
    expectDefinite(results, { retryable: false, mentions: `127.0.0.1:${server.port} does not offer TLS` });
    for (const { error } of results) expect((error as JobsError).message).toContain("nothing was sent in plaintext");
  });

  it("a URL mixing tls:// and nats:// servers, or another scheme, is refused at once (InvalidOptionsError)", async () => {
    for (const url of [`tls://127.0.0.1:${server.port},nats://127.0.0.1:${server.port}`, `http://127.0.0.1:${server.port}`]) {
      const broker = createNatsBroker({ url, connectTimeout: CONNECT_TIMEOUT_MS });
      const error = await createAdmin({ broker })
        .counts("q")
        .then(
          () => undefined,
          (e: unknown) => e as JobsError,
        );
      await broker.close();
      expect(error?.code).toBe("invalid-options");
      expect(error?.message).toMatch(/tls:\/\/|scheme/);
    }
  });

  it("the right password works on the same server (the private server is not broken)", async () => {
    const broker = createNatsBroker({
      url: `nats://jobs:the-right-one@127.0.0.1:${server.port}`,
      connectTimeout: CONNECT_TIMEOUT_MS,
      ...uniqueTopology("wrongurl"),
    });
    try {
      expect(await createAdmin({ broker }).counts("wrongurl")).toEqual({ waiting: 0, delayed: 0, active: 0, dead: 0 });
    } finally {
      await broker.close();
    }
  });
});
