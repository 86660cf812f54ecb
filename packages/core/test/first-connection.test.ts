// The adapter toolkit's first-connection bound and auth-failure classification, on their own
// (each adapter's wrong-url.test.ts shows them against its real broker).
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import {
  BrokerClosedError,
  BrokerConnectionError,
  brokerAuthError,
  brokerConnectionError,
  FirstConnection,
  isAuthFailure,
  notConnectedError,
} from "../src/adapter/index.js";

/** An error as a broker client throws it. */
function native(name: string, message: string, code?: string | number): Error {
  const error = new Error(message);
  error.name = name;
  if (code !== undefined) (error as Error & { code?: unknown }).code = code;
  return error;
}

const settle = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => "resolved",
    (e: unknown) => e,
  );

describe("isAuthFailure", () => {
  it("recognises each broker's refused login and nothing else", () => {
    const refused = [
      native("ReplyError", "WRONGPASS invalid username-password pair or user is disabled."),
      native("ReplyError", "NOAUTH Authentication required."),
      native("Error", 'Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused"', 403),
      native("AuthorizationError", "Authorization Violation"),
      native("InvalidClientTokenId", "The security token included in the request is invalid."),
      native("CredentialsProviderError", "Could not load credentials from any providers"),
    ];
    for (const error of refused) expect(isAuthFailure(error), error.message).toBe(true);
    const unreachable = [
      native("Error", "connect ECONNREFUSED 127.0.0.1:1", "ECONNREFUSED"),
      native("Error", "getaddrinfo ENOTFOUND nonexistent.invalid", "ENOTFOUND"),
      native("RequestTimeout", "no reply within 10000 ms"),
      undefined,
    ];
    for (const error of unreachable) expect(isAuthFailure(error), String(error?.message)).toBe(false);
  });

  it("makes brokerConnectionError non-retryable for a refused login only", () => {
    expect(brokerConnectionError("x", "publish refused", native("ReplyError", "NOAUTH Authentication required.")).retryable).toBe(false);
    expect(brokerConnectionError("x", "publish refused", native("ReplyError", "OOM command not allowed")).retryable).toBe(true);
  });

  it("brokerAuthError names the host and what was refused, without the password", () => {
    const error = brokerAuthError(
      "redis",
      "redis://u:hunter2@db:6379",
      "connect",
      native("ReplyError", "WRONGPASS for redis://u:hunter2@db"),
    );
    expect(error).toBeInstanceOf(BrokerConnectionError);
    expect(error.code).toBe("broker-connection");
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/^\[jobs\] \[redis\] redis:\/\/u:\*\*\*@db:6379 refused the credentials or authorization \(connect\)/);
    expect(inspect(error, { depth: 10 })).not.toContain("hunter2");
  });
});

describe("FirstConnection", () => {
  it("a call waits for the first connection and goes on when it comes", async () => {
    const first = new FirstConnection("x", "host:1", 5_000);
    const waiting = settle(first.wait());
    first.failed(native("Error", "connect ECONNREFUSED", "ECONNREFUSED"));
    first.connectedNow();
    expect(await waiting).toBe("resolved");
    expect(first.connected).toBe(true);
    expect(await settle(first.wait())).toBe("resolved");
  });

  it("without a connection, a call fails after the connect timeout with the host and the last failure (retryable)", async () => {
    const first = new FirstConnection("x", "host:1", 50);
    first.failed(native("Error", "connect ECONNREFUSED host:1", "ECONNREFUSED"));
    const error = (await settle(first.wait())) as BrokerConnectionError;
    expect(error).toBeInstanceOf(BrokerConnectionError);
    expect(error.retryable).toBe(true);
    expect(error.message).toBe("[jobs] [x] cannot connect to host:1 within 50 ms (nothing was sent): connect ECONNREFUSED host:1");
  });

  it("a refused login fails the waiting calls at once, and later ones too, non-retryable", async () => {
    const first = new FirstConnection("x", "host:1", 60_000);
    const waiting = settle(first.wait());
    first.failed(native("AuthorizationError", "Authorization Violation"));
    const error = (await waiting) as BrokerConnectionError;
    expect(error.retryable).toBe(false);
    expect(((await settle(first.wait())) as BrokerConnectionError).retryable).toBe(false);
  });

  it("abort() fails the waiting calls and every later one with its error", async () => {
    const first = new FirstConnection("x", "host:1", 60_000);
    const waiting = settle(first.wait());
    first.abort(new BrokerClosedError());
    expect(await waiting).toBeInstanceOf(BrokerClosedError);
    expect(await settle(first.wait())).toBeInstanceOf(BrokerClosedError);
  });

  it("notConnectedError without a failure seen says only the bound", () => {
    expect(notConnectedError("x", "h:1", 10, undefined).message).toBe("[jobs] [x] cannot connect to h:1 within 10 ms (nothing was sent)");
  });
});
