import { describe, expect, it } from "vitest";
import { JobValidationError, type ValidationIssue } from "../src/errors.js";
import { assertJsonValue, MAX_DEPTH, parseUntrustedJson, utf8Length } from "../src/internal/json.js";

function issuesOf(value: unknown): readonly ValidationIssue[] {
  try {
    assertJsonValue(value, "payload");
  } catch (error) {
    expect(error).toBeInstanceOf(JobValidationError);
    const e = error as JobValidationError;
    expect(e.code).toBe("job-validation");
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/^\[jobs\] payload is not plain JSON/);
    expect(e.issues.length).toBeGreaterThan(0);
    return e.issues;
  }
  throw new Error("assertJsonValue accepted a value that is not plain JSON");
}

const deepArray = (depth: number): unknown => {
  let value: unknown = [];
  for (let i = 1; i < depth; i++) value = [value];
  return value;
};

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

describe("assertJsonValue", () => {
  it("accepts plain JSON values", () => {
    for (const value of [
      null,
      true,
      0,
      -1.5,
      "",
      "text",
      [],
      {},
      [1, "a", null, { b: [true] }],
      { nested: { list: [{ deep: "x" }] }, n: 1e300 },
      Object.assign(Object.create(null) as object, { a: 1 }),
    ]) {
      expect(() => assertJsonValue(value, "payload")).not.toThrow();
    }
  });

  it("accepts the same object twice when it is not a cycle", () => {
    const shared = { a: 1 };
    expect(() => assertJsonValue({ left: shared, right: shared, list: [shared, shared] }, "payload")).not.toThrow();
  });

  it.each([
    ["a Date", { when: new Date(0) }, ["when"], "Date"],
    ["a Map", { m: new Map([["a", 1]]) }, ["m"], "Map"],
    ["a Set", [new Set([1])], [0], "Set"],
    ["a class instance", { p: new Point(1, 2) }, ["p"], "Point"],
    ["a RegExp", { r: /x/ }, ["r"], "RegExp"],
    ["a Buffer", { b: Buffer.from("x") }, ["b"], "Buffer"],
    ["a function", { f: () => 1 }, ["f"], "function"],
    ["an undefined value", { a: 1, u: undefined }, ["u"], "undefined"],
    ["an undefined array item", [1, undefined], [1], "undefined"],
    ["a hole in an array", Object.assign(new Array<unknown>(3), { 0: 1, 2: 3 }), [1], "undefined"],
    ["a BigInt", { big: 10n }, ["big"], "bigint"],
    ["a symbol", { s: Symbol("x") }, ["s"], "symbol"],
    ["NaN", { a: { b: [0, Number.NaN] } }, ["a", "b", 1], "NaN"],
    ["Infinity", { n: Number.POSITIVE_INFINITY }, ["n"], "Infinity"],
    ["-Infinity", [Number.NEGATIVE_INFINITY], [0], "-Infinity"],
  ])("rejects %s with the issue's path", (_what, value, path, text) => {
    const issues = issuesOf(value);
    expect(issues[0]?.path).toEqual(path);
    expect(issues[0]?.message).toContain(text);
  });

  it("rejects a top-level non-JSON value with an empty path", () => {
    expect(issuesOf(undefined)[0]?.path).toEqual([]);
    expect(issuesOf(new Date())[0]?.path).toEqual([]);
    expect(issuesOf(() => 1)[0]?.path).toEqual([]);
  });

  it("rejects cycles with the path where the cycle closes", () => {
    const a: Record<string, unknown> = { name: "a" };
    a.self = { back: a };
    const issues = issuesOf(a);
    expect(issues[0]?.message).toContain("circular");
    expect(issues[0]?.path).toEqual(["self", "back"]);
    const list: unknown[] = [1];
    list.push(list);
    expect(issuesOf(list)[0]?.path).toEqual([1]);
  });

  it(`accepts ${MAX_DEPTH} levels of nesting and rejects ${MAX_DEPTH + 1}`, () => {
    expect(MAX_DEPTH).toBe(64);
    expect(() => assertJsonValue(deepArray(64), "payload")).not.toThrow();
    const issues = issuesOf(deepArray(65));
    expect(issues[0]?.message).toContain("deeper than 64");
    expect(issues[0]?.path).toEqual(new Array(64).fill(0));
  });

  it("rejects __proto__ keys with any value, and constructor keys holding an object or array", () => {
    const proto = JSON.parse('{"a":{"__proto__":{"x":1}}}') as unknown;
    expect(issuesOf(proto)[0]?.path).toEqual(["a", "__proto__"]);
    expect(issuesOf(JSON.parse('{"__proto__":"x"}'))[0]?.path).toEqual(["__proto__"]);
    expect(issuesOf({ a: [{ constructor: { prototype: { polluted: true } } }] })[0]?.path).toEqual(["a", 0, "constructor"]);
    expect(issuesOf({ constructor: { name: "x" } })[0]?.message).toContain("string, number, boolean or null");
    expect(issuesOf({ constructor: ["x"] })[0]?.path).toEqual(["constructor"]);
  });

  it("accepts a constructor key holding a string, number, boolean or null (ordinary data)", () => {
    for (const value of ["Ferrari", 7, false, null])
      expect(() => assertJsonValue({ team: { constructor: value } }, "payload")).not.toThrow();
  });

  it("reports several issues but stops at ten", () => {
    const many = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, undefined]));
    const issues = issuesOf(many);
    expect(issues).toHaveLength(10);
    expect(issues.map((i) => i.path[0])).toEqual(Array.from({ length: 10 }, (_, i) => `k${i}`));
  });

  it("says where the first issue is in the message", () => {
    try {
      assertJsonValue({ user: { born: new Date(0) } }, "payload");
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).toContain("at user.born");
    }
  });
});

describe("parseUntrustedJson", () => {
  it("parses plain JSON", () => {
    expect(parseUntrustedJson('{"a":[1,{"b":"c"}],"d":null}')).toEqual({ a: [1, { b: "c" }], d: null });
  });

  it("takes a custom depth limit", () => {
    expect(parseUntrustedJson("[[[]]]", 3)).toEqual([[[]]]);
    expect(() => parseUntrustedJson("[[[[]]]]", 3)).toThrow("nested deeper than 3");
  });

  it("rejects forbidden keys, escaped or not, at any depth", () => {
    expect(() => parseUntrustedJson('[[{"__proto__":1}]]')).toThrow('forbidden key "__proto__"');
    expect(() => parseUntrustedJson('{"a":{"\\u005f\\u005fproto\\u005f\\u005f":1}}')).toThrow("__proto__");
    expect(() => parseUntrustedJson('{"constructor":{"prototype":{"x":1}}}')).toThrow('forbidden key "constructor"');
    expect(() => parseUntrustedJson('[{"\\u0063onstructor":[]}]')).toThrow('forbidden key "constructor"');
  });

  it("accepts a constructor key holding a primitive, and leaves Object alone", () => {
    expect(parseUntrustedJson('{"constructor":"Ferrari","n":{"constructor":1,"m":{"constructor":null}}}')).toEqual({
      constructor: "Ferrari",
      n: { constructor: 1, m: { constructor: null } },
    });
    expect(Object.getPrototypeOf(parseUntrustedJson('{"constructor":"x"}'))).toBe(Object.prototype);
  });

  it("accepts escaped keys that are not forbidden", () => {
    expect(parseUntrustedJson('{"\\u0061":"\\u005f_proto__"}')).toEqual({ a: "__proto__" });
  });

  it("throws SyntaxError for invalid JSON", () => {
    expect(() => parseUntrustedJson("{")).toThrow(SyntaxError);
    expect(() => parseUntrustedJson("]]][[[")).toThrow(SyntaxError);
  });
});

describe("utf8Length", () => {
  it("counts bytes", () => {
    expect(utf8Length("abc")).toBe(3);
    expect(utf8Length("é")).toBe(2);
    expect(utf8Length("✓")).toBe(3);
    expect(utf8Length("🎉")).toBe(4);
  });
});
