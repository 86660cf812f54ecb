// The plumbing @jobs/core/adapter offers every adapter, each piece on its own.
import { describe, expect, it } from "vitest";
import { redactedCause, redactedMessage } from "../src/adapter/cause.js";
import { assertConsumeOptions, payloadTooLarge } from "../src/adapter/checks.js";
import { brokerClosedError, brokerConnectionError } from "../src/adapter/errors.js";
import { warnInsecureConnection } from "../src/adapter/insecure.js";
import { reconnectDelay } from "../src/adapter/reconnect.js";
import { RequestTimeoutError, withTimeout } from "../src/adapter/request-timeout.js";
import type { BrokerEventMap } from "../src/broker.js";
import { BrokerClosedError, BrokerConnectionError, InvalidOptionsError, JobsError, PayloadTooLargeError } from "../src/errors.js";
import { Emitter } from "../src/events.js";

describe("redactedCause and redactedMessage", () => {
  it("keep name, redacted message and code, and nothing else the native error carries", () => {
    const native = Object.assign(new TypeError("AUTH failed for redis://app:s3cret@db.internal:6379"), {
      code: "NOAUTH",
      command: { name: "auth", args: ["app", "s3cret"] },
    });
    const cause = redactedCause(native);
    expect(cause.name).toBe("TypeError");
    expect(cause.message).toBe("AUTH failed for redis://app:***@db.internal:6379");
    expect((cause as Error & { code?: unknown }).code).toBe("NOAUTH");
    expect(JSON.stringify(cause, Object.getOwnPropertyNames(cause))).not.toContain("s3cret");
    expect(Object.keys(cause)).not.toContain("command");
    expect(redactedMessage("plain text page=2")).toBe("plain text page=2");
    expect(redactedMessage("plain text token=abc")).toBe("plain text token=***");
    expect(redactedMessage(native)).not.toContain("s3cret");
  });

  it("keep a numeric code, drop any other kind, and name non-errors Error", () => {
    expect((redactedCause(Object.assign(new Error("x"), { code: 404 })) as Error & { code?: unknown }).code).toBe(404);
    expect((redactedCause(Object.assign(new Error("x"), { code: { deep: 1 } })) as Error & { code?: unknown }).code).toBeUndefined();
    const fromString = redactedCause("amqp://guest:guest@host refused");
    expect(fromString.name).toBe("Error");
    expect(fromString.message).toBe("amqp://***@host refused");
  });
});

describe("brokerClosedError and brokerConnectionError", () => {
  it("say the adapter's name, redact, and keep a redacted cause", () => {
    const closed = brokerClosedError("acme", "the delivery went back to its queue");
    expect(closed).toBeInstanceOf(BrokerClosedError);
    expect(closed.message).toBe("[jobs] [acme] broker is closed; the delivery went back to its queue");
    expect(brokerClosedError("acme").message).toBe("[jobs] [acme] broker is closed");
    const failed = brokerConnectionError("acme", "publish failed", new Error("lost acme://u:pw@h"));
    expect(failed).toBeInstanceOf(BrokerConnectionError);
    expect(failed.retryable).toBe(true);
    expect(failed.message).toBe("[jobs] [acme] publish failed: lost acme://u:***@h");
    expect((failed.cause as Error).message).toBe("lost acme://u:***@h");
  });
});

describe("withTimeout", () => {
  it("passes a settled request through, value or rejection", async () => {
    await expect(withTimeout(Promise.resolve(7), 1_000)).resolves.toBe(7);
    await expect(withTimeout(Promise.reject(new Error("no")), 1_000)).rejects.toThrow("no");
  });

  it("rejects with RequestTimeoutError once the time has passed without a reply", async () => {
    const error = await withTimeout(new Promise(() => {}), 20).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RequestTimeoutError);
    expect((error as RequestTimeoutError).name).toBe("RequestTimeout");
    expect((error as RequestTimeoutError).timeoutMs).toBe(20);
  });
});

describe("reconnectDelay", () => {
  it("doubles from initialMs up to maxMs, less at most 20 %", () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      const full = Math.min(5_000, 100 * 2 ** attempt);
      for (let i = 0; i < 50; i++) {
        const ms = reconnectDelay(attempt, { initialMs: 100, maxMs: 5_000 });
        expect(ms).toBeLessThanOrEqual(full);
        expect(ms).toBeGreaterThanOrEqual(Math.floor(full * 0.8));
      }
    }
  });

  it("treats a negative or fractional attempt as the first or the one below", () => {
    expect(reconnectDelay(-3, { initialMs: 100, maxMs: 5_000 })).toBeLessThanOrEqual(100);
    expect(reconnectDelay(1.9, { initialMs: 100, maxMs: 5_000 })).toBeLessThanOrEqual(200);
  });
});

describe("assertConsumeOptions", () => {
  it("accepts an integer prefetch within the limit and a finite lease above 0", () => {
    expect(() => assertConsumeOptions({ prefetch: 1, leaseMs: 0.5 })).not.toThrow();
    expect(() => assertConsumeOptions({ prefetch: 65_535, leaseMs: 30_000 }, 65_535)).not.toThrow();
  });

  it.each([
    [{ prefetch: 0, leaseMs: 1_000 }, "prefetch"],
    [{ prefetch: 1.5, leaseMs: 1_000 }, "prefetch"],
    [{ prefetch: 65_536, leaseMs: 1_000 }, "prefetch"],
    [{ prefetch: 10, leaseMs: 0 }, "leaseMs"],
    [{ prefetch: 10, leaseMs: Number.POSITIVE_INFINITY }, "leaseMs"],
    [{ prefetch: 10, leaseMs: Number.NaN }, "leaseMs"],
  ])("refuses %j, naming %s", (options, field) => {
    const error = (() => {
      try {
        assertConsumeOptions(options, 65_535);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as InvalidOptionsError).field).toBe(field);
  });
});

describe("payloadTooLarge", () => {
  it("counts UTF-8 bytes: a body at the limit fits, one byte more does not", () => {
    const body = "é".repeat(50); // 100 bytes in UTF-8, 50 UTF-16 units
    expect(payloadTooLarge(body, 100)).toBeUndefined();
    const error = payloadTooLarge(body, 99, "[jobs] [acme] message");
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect(JobsError.isInstance(error)).toBe(true);
    expect(error?.size).toBe(100);
    expect(error?.limit).toBe(99);
  });
});

describe("warnInsecureConnection", () => {
  it("emits on a later turn, so a listener added right after the factory hears it", async () => {
    const events = new Emitter<BrokerEventMap>();
    warnInsecureConnection(events, "acme", "connecting to db.example without TLS");
    const heard = new Promise<string>((resolve) => events.on("insecure-connection", (e) => resolve(e.message)));
    await expect(heard).resolves.toBe("[jobs] [acme] connecting to db.example without TLS");
  });
});
