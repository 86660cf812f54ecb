// A wrong endpoint or missing credentials: the first enqueue, worker start and admin call each fail
// with a definite, typed error within the connect timeout, never "may or may not be stored", and
// never with the secret key in it. The emulator checks no credentials, so a refused signature
// (InvalidClientTokenId, SignatureDoesNotMatch) cannot be shown here; credentials that cannot be
// loaded at all take the same non-retryable path.

import { randomBytes } from "node:crypto";
import { expectDefiniteConnectionError, type FirstCallOutcome, firstCalls, freePort } from "@jobs/conformance";
import { createAdmin } from "@jobs/core";
import { describe, expect, it } from "vitest";
import { createSqsBroker, type SqsBrokerOptions } from "../src/index.js";
import { endpointUrl } from "./emulator.js";

const CONNECT_TIMEOUT_MS = 2_000;
const prefix = `wrongurl${randomBytes(3).toString("hex")}-`;
const SECRET = "wrong-Secret-7c41";
const expectDefinite = (results: readonly FirstCallOutcome[], expected: { retryable: boolean; mentions: string }): void =>
  expectDefiniteConnectionError(results, { ...expected, secret: SECRET, connectTimeoutMs: CONNECT_TIMEOUT_MS });

function options(endpoint: string, extra: Partial<SqsBrokerOptions> = {}): SqsBrokerOptions {
  return {
    url: endpoint,
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
