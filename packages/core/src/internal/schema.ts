import type { StandardSchemaV1 } from "@standard-schema/spec";
import type { ValidationIssue } from "../errors.js";

/** Result of running a Standard Schema. */
export type SchemaResult = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly issues: ValidationIssue[] };

/**
 * Runs a Standard Schema, synchronously when the schema is synchronous. A schema that throws
 * (e.g. a stack overflow in a recursive schema) counts as a failed validation, never a crash.
 */
export function runSchema(schema: StandardSchemaV1, value: unknown): SchemaResult | Promise<SchemaResult> {
  let result: StandardSchemaV1.Result<unknown> | Promise<StandardSchemaV1.Result<unknown>>;
  try {
    result = schema["~standard"].validate(value);
  } catch (error) {
    return thrown(error);
  }
  if (result instanceof Promise) return result.then(toResult, thrown);
  return toResult(result);
}

function toResult(result: StandardSchemaV1.Result<unknown>): SchemaResult {
  if (result.issues === undefined) return { ok: true, value: result.value };
  return {
    ok: false,
    issues: result.issues.map((issue) => ({
      message: issue.message,
      // Array.from, not .map: a library's path may be an Array subclass (arktype's carries a cache).
      path: Array.from(issue.path ?? [], (p) => {
        const key = typeof p === "object" && p !== null && "key" in p ? p.key : p;
        return typeof key === "number" ? key : String(key);
      }),
    })),
  };
}

function thrown(error: unknown): SchemaResult {
  return { ok: false, issues: [{ message: `schema threw: ${(error as Error)?.message ?? String(error)}`, path: [] }] };
}

/** One line describing the first issues, for error messages. */
export function describeIssues(issues: readonly ValidationIssue[]): string {
  return issues
    .slice(0, 3)
    .map((i) => (i.path.length > 0 ? `${i.path.join(".")}: ${i.message}` : i.message))
    .join("; ");
}
