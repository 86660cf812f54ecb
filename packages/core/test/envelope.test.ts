import { describe, expect, it } from "vitest";
import { decodeEnvelope, ENVELOPE_VERSION, type Envelope, encodeEnvelope, encodeLocalEnvelope, MAX_ATTEMPTS } from "../src/envelope.js";
import { EnvelopeDecodeError, JobsError, PayloadTooLargeError } from "../src/errors.js";

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

  it("rejects a constructor key holding an object or array, plain or escaped", () => {
    expect(decodeError(withPayloadText('{"constructor":{"prototype":{}}}')).message).toContain("constructor");
    decodeError(withPayloadText('{"\\u0063onstructor":{"a":1}}'));
    decodeError(withPayloadText('{"list":[{"constructor":[1]}]}'));
    decodeError(JSON.stringify(envelope()).replace('"v":1', '"constructor":{"prototype":{}},"v":1'));
  });

  it("accepts a constructor key holding a primitive, in the payload and in meta", () => {
    const payload = { constructor: "Ferrari", car: { constructor: null, n: 1 } };
    expect(decodeEnvelope(encodeEnvelope(envelope({ payload })), LIMIT).payload).toEqual(payload);
    expect(decodeEnvelope(withPayloadText('{"\\u0063onstructor":2}'), LIMIT).payload).toEqual({ constructor: 2 });
    const meta = JSON.stringify(envelope()).replace('"v":1', '"meta":{"constructor":"x"},"v":1');
    expect(decodeEnvelope(meta, LIMIT).meta).toEqual({ constructor: "x" });
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

describe("attempt bounds on receipt", () => {
  it("accepts what enqueue can write: maxAttempts up to MAX_ATTEMPTS, attempt up to maxAttempts", () => {
    expect(MAX_ATTEMPTS).toBe(1_000);
    for (const text of [
      encodeEnvelope(envelope({ attempt: 1_000, maxAttempts: 1_000 })),
      JSON.stringify(envelope({ attempt: 3, maxAttempts: 3 })),
    ]) {
      expect(decodeEnvelope(text, LIMIT)).toMatchObject({ attempt: JSON.parse(text).attempt, maxAttempts: JSON.parse(text).maxAttempts });
    }
  });

  it("refuses forged counts, on the fast path and the general one alike", () => {
    const forged = [
      envelope({ attempt: 1e308, maxAttempts: 3 }),
      envelope({ attempt: 1, maxAttempts: 1e9 }),
      envelope({ attempt: 1, maxAttempts: MAX_ATTEMPTS + 1 }),
      envelope({ attempt: 4, maxAttempts: 3 }),
    ];
    for (const e of forged) {
      expect(decodeError(encodeEnvelope(e)).message).toMatch(/bad (attempt|maxAttempts)/);
      expect(decodeError(JSON.stringify({ ...e, payload: 1, v: 1 })).message).toMatch(/bad (attempt|maxAttempts)/);
    }
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
    ["maxAttempts", 1_001, "bad maxAttempts (an integer from 1 to 1000)"],
    ["maxAttempts", 1e9, "bad maxAttempts"],
    ["attempt", 26, "bad attempt (above maxAttempts)"],
    ["attempt", 1e308, "bad attempt (above maxAttempts)"],
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

/**
 * Text in the form the client writes on enqueue (fields first, payload last), which
 * `decodeEnvelope` reads on a fast path without parsing the fields as JSON.
 */
function canonical(overrides: Partial<Record<keyof Envelope, unknown>> = {}): string {
  const { payload, ...meta } = envelope(overrides);
  return encodeLocalEnvelope({ meta, payloadJson: JSON.stringify(payload) });
}

/** A decode failure as both paths must agree on it: the JSON syntax error's wording quotes the text, so only its kind. */
function describeFailure(error: unknown): { error: string } {
  const e = error as EnvelopeDecodeError;
  return { error: e.cause instanceof SyntaxError ? "invalid JSON" : e.message };
}

/**
 * What the general path makes of `text`: leading whitespace is valid JSON but not the form the
 * fast path reads, so it takes the general path with the same meaning.
 */
function general(text: string): unknown {
  return outcome(` ${text}`);
}

/** The envelope `decodeEnvelope` makes of `text`, or its failure. */
function outcome(text: string): unknown {
  try {
    return decodeEnvelope(text, LIMIT);
  } catch (error) {
    return describeFailure(error);
  }
}

describe("envelope in the client's own form (fast path)", () => {
  it("is the form the client writes: fields in order, payload last", () => {
    const text = canonical();
    expect(text.startsWith('{"v":1,"id":"')).toBe(true);
    expect(text.endsWith(`"timeout":1800000,"payload":${JSON.stringify(envelope().payload)}}`)).toBe(true);
    expect(decodeEnvelope(text, LIMIT)).toEqual(envelope());
  });

  it.each([
    ["every priority", ["trivial", "low", "normal", "high", "critical"].map((priority) => canonical({ priority }))],
    [
      "payloads of every JSON kind",
      [null, 0, -1.5e300, "", 'x"}', [], {}, [{ a: [1, { b: null }] }], true].map((payload) => canonical({ payload })),
    ],
    ["zero and 15-digit times", [canonical({ enqueuedAt: 0, runAt: 0 }), canonical({ runAt: 999_999_999_999_999 })]],
    ["edge numbers", [canonical({ attempt: 1_000, maxAttempts: 1_000, timeout: 2_147_483_647 })]],
    ["ids, names and queues at their limits", [canonical({ id: "i".repeat(128), name: `n${":".repeat(127)}`, queue: "q" })]],
  ])("decodes %s exactly as the general path does", (_what, texts) => {
    for (const text of texts) {
      const decoded = decodeEnvelope(text, LIMIT);
      expect(decoded).toEqual(general(text));
      expect(decoded).toEqual(JSON.parse(text));
    }
  });

  it.each([
    ["a 16-digit time", canonical({ runAt: 1_000_000_000_000_000 })],
    ["a time past 2^53", canonical().replace('"runAt":1700000000000', '"runAt":9007199254740993')],
    ["a timeout past the timer limit", canonical({ timeout: 2_147_483_648 })],
    ["a queue with an escaped quote", canonical({ queue: 'q"x' })],
    ["a queue with an escaped control character", canonical({ queue: "q\nx" })],
    ["a queue written with a unicode escape", canonical().replace('"queue":"default"', '"queue":"\\u0064efault"')],
    ["a payload followed by another field", canonical().replace(/}$/, ',"attempt":7}')],
    ["a payload followed by a second payload", canonical().replace(/}$/, ',"payload":2}')],
    ["a payload followed by a second version", canonical().replace(/}$/, ',"v":2}')],
    [
      "a payload with __proto__",
      canonical()
        .replace(/}$/, "")
        .replace(/"payload":.*$/, '"payload":{"__proto__":{"x":1}}}'),
    ],
    ["a payload with an escaped constructor key", canonical({ payload: { "\u0063onstructor": 1 } }).replace("\\\\u0063", "\\u0063")],
    ["a payload 65 levels deep", canonical().replace(/"payload":.*$/, `"payload":${nested(65)}}`)],
    ["a payload 64 levels deep", canonical().replace(/"payload":.*$/, `"payload":${nested(64)}}`)],
    ["an unclosed payload", canonical().replace(/}$/, "")],
    ["whitespace after the payload", canonical().replace(/}$/, " }")],
    ["a leading zero", canonical().replace('"attempt":1', '"attempt":01')],
    ["a fraction", canonical().replace('"timeout":1800000', '"timeout":1800000.5')],
    ["an exponent", canonical().replace('"timeout":1800000', '"timeout":18e5')],
    ["attempt 0", canonical().replace('"attempt":1', '"attempt":0')],
    ["attempt equal to maxAttempts", canonical({ attempt: 25 })],
    ["attempt above maxAttempts", canonical({ attempt: 26 })],
    ["maxAttempts at the bound", canonical({ attempt: 1000, maxAttempts: 1000 })],
    ["maxAttempts above the bound", canonical({ maxAttempts: 1001 })],
    ["15-digit attempt and maxAttempts", canonical({ attempt: 999_999_999_999_999, maxAttempts: 999_999_999_999_999 })],
    ["a payload with a constructor key holding an object", canonical({ payload: { a: 1 } }).replace('{"a":1}', '{"constructor":{"a":1}}')],
    ["a payload with a constructor key holding a string", canonical({ payload: { constructor: "Ferrari" } })],
    ["an unknown priority", canonical().replace('"priority":"normal"', '"priority":"nor"')],
    ["a bad id", canonical({ id: "-x" })],
    ["version 2", canonical().replace('"v":1', '"v":2')],
    [
      "trace and metadata",
      canonical({ trace: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }, meta: { a: 1 } }),
    ],
  ])("treats %s exactly as the general path does", (_what, text) => {
    expect(outcome(text)).toEqual(general(text));
  });

  it("agrees with the general path on 20,000 texts with one character changed, dropped or doubled", () => {
    const alphabet = '{}[]",:0123456789.-eE \\uazAZ_';
    const base = canonical({ payload: { to: "a@b", n: [1, 2.5, { x: null }], ok: false } });
    let seed = 42;
    const random = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    let accepted = 0;
    for (let k = 0; k < 20_000; k++) {
      const i = random(base.length);
      const op = random(3);
      const text =
        op === 0
          ? base.slice(0, i) + alphabet[random(alphabet.length)] + base.slice(i + 1)
          : op === 1
            ? base.slice(0, i) + base.slice(i + 1)
            : base.slice(0, i) + base[i] + base.slice(i);
      const got = outcome(text);
      expect(got).toEqual(general(text));
      if (!(typeof got === "object" && got !== null && "error" in got)) accepted++;
    }
    // Both outcomes occur: the loop compares accepted texts too, not only errors.
    expect(accepted).toBeGreaterThan(1_000);
    // About 0.1 s on an idle machine; 40,000 decodes took over 5 s with the 2 cores under CI load.
  }, 60_000);
});
