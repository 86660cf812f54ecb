import { describe, expect, it } from "vitest";
import {
  decodeEnvelope,
  ENVELOPE_VERSION,
  type Envelope,
  EnvelopeDecodeError,
  encodeEnvelope,
  JobsError,
  PayloadTooLargeError,
} from "../src/index.js";

const LIMIT = 1_048_576;

function envelope(overrides: Partial<Record<keyof Envelope, unknown>> = {}): Envelope {
  return {
    v: 1,
    id: "0b9c5d0e-6a8f-4a55-8d54-5d7a2b8c0f11",
    name: "email.send",
    queue: "default",
    payload: { to: "ada@example.com", tags: ["a", "b"], n: 1.5, ok: true, none: null },
    attempt: 1,
    maxAttempts: 25,
    priority: "normal",
    enqueuedAt: 1_700_000_000_000,
    runAt: 1_700_000_000_000,
    timeout: 1_800_000,
    ...overrides,
  } as Envelope;
}

/** Envelope text with `payloadText` spliced in verbatim as the payload. */
function withPayloadText(payloadText: string): string {
  return encodeEnvelope(envelope({ payload: "@@PAYLOAD@@" })).replace('"@@PAYLOAD@@"', payloadText);
}

function decodeError(body: string, maxBytes = LIMIT): EnvelopeDecodeError {
  let caught: unknown;
  try {
    decodeEnvelope(body, maxBytes);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(EnvelopeDecodeError);
  const error = caught as EnvelopeDecodeError;
  expect(error.code).toBe("envelope-decode");
  expect(error.retryable).toBe(false);
  expect(error.message.startsWith("[jobs] cannot decode envelope: ")).toBe(true);
  return error;
}

const nested = (depth: number): string => `${"[".repeat(depth)}${"]".repeat(depth)}`;

describe("envelope round trip", () => {
  it("decodes what it encodes", () => {
    const e = envelope({
      trace: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "k=v" },
      meta: { tenant: "acme", retries: 2, beta: false },
      lastError: { name: "Error", message: "boom", at: 1_700_000_000_500, attempt: 1 },
      attempt: 2,
      priority: "critical",
      priorDeliveries: 2,
    });
    expect(ENVELOPE_VERSION).toBe(1);
    expect(decodeEnvelope(encodeEnvelope(e), LIMIT)).toEqual(e);
  });

  it("accepts any JSON payload, including null, strings and arrays", () => {
    for (const payload of [null, "text", 0, [1, [2, [3]]], { "": "" }, "ünïcødé ✓ 🎉"]) {
      expect(decodeEnvelope(encodeEnvelope(envelope({ payload })), LIMIT).payload).toEqual(payload);
    }
  });

  it("ignores unknown fields (forward compatibility)", () => {
    const text = JSON.stringify({ ...envelope(), futureField: { x: 1 } });
    expect(decodeEnvelope(text, LIMIT).id).toBe(envelope().id);
  });
});

describe("envelope size limit", () => {
  it("rejects a message over the limit before parsing it, with PayloadTooLargeError as cause", () => {
    // Not even JSON: a parse would fail with a SyntaxError, so a size error proves the order.
    const body = `{${"x".repeat(2_000)}`;
    const error = decodeError(body, 1_000);
    expect(error.message).toContain("2001 bytes");
    expect(error.cause).toBeInstanceOf(PayloadTooLargeError);
    const cause = error.cause as PayloadTooLargeError;
    expect(cause.size).toBe(2_001);
    expect(cause.limit).toBe(1_000);
    expect(cause.code).toBe("payload-too-large");
  });

  it("counts UTF-8 bytes, not characters", () => {
    const body = encodeEnvelope(envelope({ payload: "é".repeat(300) }));
    const bytes = Buffer.byteLength(body, "utf8");
    expect(bytes).toBeGreaterThan(body.length);
    expect(decodeEnvelope(body, bytes).payload).toBe("é".repeat(300));
    expect(decodeError(body, bytes - 1).cause).toBeInstanceOf(PayloadTooLargeError);
    expect(body.length).toBeLessThanOrEqual(bytes - 1);
  });

  it("accepts a message of exactly the limit", () => {
    const body = encodeEnvelope(envelope());
    expect(decodeEnvelope(body, Buffer.byteLength(body)).id).toBe(envelope().id);
  });
});

describe("envelope nesting limit", () => {
  const deepest = (text: string): number => {
    let depth = 0;
    let max = 0;
    for (const c of text) {
      if (c === "[" || c === "{") max = Math.max(max, ++depth);
      else if (c === "]" || c === "}") depth--;
    }
    return max;
  };

  it("accepts a payload 64 levels deep, the most enqueue accepts (65 levels with the envelope)", () => {
    const text = withPayloadText(nested(64));
    expect(deepest(text)).toBe(65);
    expect(decodeEnvelope(text, LIMIT).payload).toEqual(JSON.parse(nested(64)));
  });

  it("rejects a payload 65 levels deep (66 with the envelope)", () => {
    const text = withPayloadText(nested(65));
    expect(deepest(text)).toBe(66);
    expect(decodeError(text).message).toContain("nested deeper than 65");
  });

  it("counts objects and arrays alike", () => {
    const objects = (depth: number): string => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
    expect(() => decodeEnvelope(withPayloadText(objects(64)), LIMIT)).not.toThrow();
    decodeError(withPayloadText(objects(65)));
  });

  it("ignores brackets inside strings, escaped quotes included", () => {
    const tricky = JSON.stringify({ s: `\\"${"[".repeat(500)}{{{{`, t: '"]]]]' });
    expect(decodeEnvelope(withPayloadText(tricky), LIMIT).payload).toEqual(JSON.parse(tricky));
  });

  it("rejects a 1,000,000-deep array quickly, without a stack overflow", () => {
    const body = "[".repeat(1_000_000);
    const started = performance.now();
    const error = decodeError(body, 2_000_000);
    expect(error.message).toContain("nested deeper than 65");
    expect(error.cause).toBeInstanceOf(Error);
    expect(error.cause).not.toBeInstanceOf(RangeError);
    expect(performance.now() - started).toBeLessThan(250);
  });
});

describe("forbidden keys", () => {
  it("rejects a __proto__ key anywhere", () => {
    expect(decodeError(withPayloadText('{"__proto__":{"admin":true}}')).message).toContain("__proto__");
    decodeError(withPayloadText('[{"a":{"__proto__":1}}]'));
    decodeError(JSON.stringify(envelope()).replace('"v":1', '"__proto__":{},"v":1'));
  });

  it("rejects __proto__ written with a unicode escape", () => {
    const text = withPayloadText('{"\\u005f_proto__":{"admin":true}}');
    expect(text).not.toContain('"__proto__"');
    expect(decodeError(text).message).toContain("__proto__");
    decodeError(withPayloadText('{"\\u005F\\u005Fproto\\u005F\\u005F":1}'));
  });

  it("rejects a constructor key, plain or escaped", () => {
    expect(decodeError(withPayloadText('{"constructor":{"prototype":{}}}')).message).toContain("constructor");
    decodeError(withPayloadText('{"\\u0063onstructor":1}'));
    decodeError(JSON.stringify(envelope()).replace('"v":1', '"meta":{"constructor":"x"},"v":1'));
  });

  it("accepts __proto__ and constructor as string values", () => {
    const payload = { text: "__proto__", other: "constructor", quoted: '"__proto__"', list: ["__proto__"] };
    expect(decodeEnvelope(encodeEnvelope(envelope({ payload })), LIMIT).payload).toEqual(payload);
  });

  it("does not pollute Object.prototype while decoding", () => {
    decodeError(withPayloadText('{"__proto__":{"polluted":true}}'));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("envelope validation", () => {
  it.each([
    ["an array", "[]"],
    ["null", "null"],
    ["a number", "42"],
    ["a string", '"{}"'],
  ])("rejects %s at the top level", (_what, text) => {
    expect(decodeError(text).message).toContain("not a JSON object");
  });

  it("rejects invalid JSON with the SyntaxError as cause", () => {
    const error = decodeError('{"v":1,');
    expect(error.cause).toBeInstanceOf(SyntaxError);
  });

  it.each([
    ["v", 2, "unsupported version 2"],
    ["v", "1", 'unsupported version "1"'],
    ["v", undefined, "unsupported version"],
    ["id", "", "bad id"],
    ["id", 7, "bad id"],
    ["id", "i".repeat(129), "bad id"],
    ["name", "", "bad name"],
    ["name", "n".repeat(257), "bad name"],
    ["name", null, "bad name"],
    ["queue", "", "bad queue"],
    ["queue", ["q"], "bad queue"],
    ["payload", undefined, "missing payload"],
    ["attempt", 0, "bad attempt"],
    ["attempt", 1.5, "bad attempt"],
    ["attempt", "1", "bad attempt"],
    ["maxAttempts", 0, "bad maxAttempts"],
    ["maxAttempts", undefined, "bad maxAttempts"],
    ["priority", "urgent", "bad priority"],
    ["priority", 2, "bad priority"],
    ["enqueuedAt", -1, "bad enqueuedAt"],
    ["enqueuedAt", "2024-01-01", "bad enqueuedAt"],
    ["runAt", undefined, "bad runAt"],
    ["runAt", null, "bad runAt"],
    ["timeout", 0, "bad timeout"],
    ["timeout", "30s", "bad timeout"],
    ["timeout", 2_147_483_648, "bad timeout"],
    ["id", "has space", "bad id"],
    ["name", "1-starts-with-a-digit", "bad name"],
    ["meta", [], "bad meta"],
    ["meta", "x", "bad meta"],
    ["meta", null, "bad meta"],
    ["trace", {}, "bad trace"],
    ["trace", "00-abc", "bad trace"],
    ["priorDeliveries", 0, "bad priorDeliveries"],
    ["priorDeliveries", 1.5, "bad priorDeliveries"],
    ["priorDeliveries", "2", "bad priorDeliveries"],
    ["priorDeliveries", 1_000_001, "bad priorDeliveries"],
  ])("rejects %s = %j (%s)", (field, value, reason) => {
    const raw: Record<string, unknown> = { ...envelope() };
    if (value === undefined) delete raw[field];
    else raw[field] = value;
    expect(decodeError(JSON.stringify(raw)).message).toContain(reason);
  });

  it("rejects numbers JSON text can spell but no valid job has", () => {
    const text = encodeEnvelope(envelope());
    decodeError(text.replace('"runAt":1700000000000', '"runAt":1e999'));
    decodeError(text.replace('"attempt":1', '"attempt":-1'));
    decodeError(text.replace('"timeout":1800000', '"timeout":1e999'));
  });

  it("is a JobsError", () => {
    expect(JobsError.isInstance(decodeError("nope"))).toBe(true);
  });
});
