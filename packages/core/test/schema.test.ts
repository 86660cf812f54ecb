import type { StandardSchemaV1 } from "@standard-schema/spec";
import { type } from "arktype";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { describeIssues, runSchema, type SchemaResult } from "../src/internal/schema.js";

async function run(schema: StandardSchemaV1, value: unknown): Promise<SchemaResult> {
  return await runSchema(schema, value);
}

const zodEmail = z.object({ to: z.email(), cc: z.array(z.email()).optional() });
const valibotEmail = v.object({ to: v.pipe(v.string(), v.email()), cc: v.optional(v.array(v.pipe(v.string(), v.email()))) });
const arkEmail = type({ to: "string.email", "cc?": "string.email[]" });

describe.each([
  ["zod", zodEmail],
  ["valibot", valibotEmail],
  ["arktype", arkEmail],
])("runSchema with %s", (_lib, schema) => {
  it("runs synchronously and returns the value", () => {
    const result = runSchema(schema, { to: "ada@example.com" });
    expect(result).not.toBeInstanceOf(Promise);
    expect(result).toEqual({ ok: true, value: { to: "ada@example.com" } });
  });

  it("maps issues to messages and plain paths", async () => {
    const result = await run(schema, { to: "ada@example.com", cc: ["ok@example.com", "not-an-email"] });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues.length).toBeGreaterThan(0);
    expect(result.issues[0]?.path).toEqual(["cc", 1]);
    expect(typeof result.issues[0]?.message).toBe("string");
    expect(result.issues[0]?.message.length).toBeGreaterThan(0);
  });

  it("reports a missing field by its key", async () => {
    const result = await run(schema, {});
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues.map((i) => i.path)).toContainEqual(["to"]);
  });
});

describe("runSchema", () => {
  it("returns the transformed output", async () => {
    const schema = z.object({ count: z.string().transform((s) => Number.parseInt(s, 10)) });
    expect(await run(schema, { count: "42" })).toEqual({ ok: true, value: { count: 42 } });
    const ark = type({ n: "string.numeric.parse" });
    expect(await run(ark, { n: "7" })).toEqual({ ok: true, value: { n: 7 } });
  });

  it("returns a promise for an async schema", async () => {
    const schema = z.object({ user: z.string().refine(async (s) => s !== "taken", "already taken") });
    const pending = runSchema(schema, { user: "free" });
    expect(pending).toBeInstanceOf(Promise);
    expect(await pending).toEqual({ ok: true, value: { user: "free" } });
    expect(await run(schema, { user: "taken" })).toEqual({ ok: false, issues: [{ message: "already taken", path: ["user"] }] });
  });

  it("treats a schema that throws as a failed validation", async () => {
    const throwing: StandardSchemaV1 = {
      "~standard": {
        version: 1,
        vendor: "test",
        validate: () => {
          throw new RangeError("Maximum call stack size exceeded");
        },
      },
    };
    expect(await run(throwing, 1)).toEqual({
      ok: false,
      issues: [{ message: "schema threw: Maximum call stack size exceeded", path: [] }],
    });
  });

  it("treats a schema whose promise rejects as a failed validation", async () => {
    const rejecting: StandardSchemaV1 = {
      "~standard": { version: 1, vendor: "test", validate: () => Promise.reject(new Error("lookup failed")) },
    };
    expect(await run(rejecting, 1)).toEqual({ ok: false, issues: [{ message: "schema threw: lookup failed", path: [] }] });
  });

  it("accepts path segments given as objects with a key, and stringifies symbol keys", async () => {
    const sym = Symbol("s");
    const custom: StandardSchemaV1 = {
      "~standard": {
        version: 1,
        vendor: "test",
        validate: () => ({ issues: [{ message: "bad", path: [{ key: "a" }, 0, { key: 2 }, sym] }] }),
      },
    };
    expect(await run(custom, 1)).toEqual({ ok: false, issues: [{ message: "bad", path: ["a", 0, 2, "Symbol(s)"] }] });
  });
});

describe("describeIssues", () => {
  it("joins the first three issues with their paths", () => {
    const text = describeIssues([
      { message: "Required", path: ["to"] },
      { message: "Too short", path: ["items", 0, "name"] },
      { message: "Top level", path: [] },
      { message: "Fourth", path: ["x"] },
    ]);
    expect(text).toBe("to: Required; items.0.name: Too short; Top level");
  });
});
