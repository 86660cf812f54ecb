import { JobValidationError, type ValidationIssue } from "../errors.js";

/** Deepest nesting accepted in payloads and envelopes. */
export const MAX_DEPTH = 64;

/**
 * Why a key may not carry its value, or undefined when it may. `__proto__` never: copied with
 * `Object.assign` or `obj[key] = value` it replaces the target's prototype. `constructor` only
 * with an object or array value: a deep merge descends into `target.constructor`, the `Object`
 * function, and writes onto it (or, through `prototype`, onto `Object.prototype`); with a string,
 * number, boolean or null a merge can only copy it as the target's own property
 * (docs/protocol.md, "Keys that are refused").
 */
export function forbiddenKey(key: string, value: unknown): string | undefined {
  if (key === "__proto__") return 'key "__proto__" is not allowed';
  if (key === "constructor" && typeof value === "object" && value !== null) {
    return 'key "constructor" holding an object or array is not allowed (only a string, number, boolean or null)';
  }
  return undefined;
}

/**
 * Checks that a value is plain JSON (objects, arrays, strings, finite numbers, booleans, null),
 * at most MAX_DEPTH deep, with no `__proto__` key and no `constructor` key holding an object or
 * array (`forbiddenKey`). Payloads that would change in a JSON round trip (Date, Map, undefined,
 * functions, BigInt, class instances, cycles) are rejected instead of being silently altered.
 */
export function assertJsonValue(value: unknown, what: string): void {
  const issues: ValidationIssue[] = [];
  check(value, [], 0, issues, new Set());
  if (issues.length > 0) {
    const first = issues[0] as ValidationIssue;
    const where = first.path.length > 0 ? ` at ${first.path.join(".")}` : "";
    throw new JobValidationError(`[jobs] ${what} is not plain JSON${where}: ${first.message}`, issues);
  }
}

function check(value: unknown, path: (string | number)[], depth: number, issues: ValidationIssue[], seen: Set<object>): void {
  if (issues.length >= 10) return;
  switch (typeof value) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) issues.push({ message: `${value} is not a finite number`, path: [...path] });
      return;
    case "object":
      break;
    default:
      issues.push({ message: `a ${typeof value} cannot be sent as JSON`, path: [...path] });
      return;
  }
  if (value === null) return;
  if (depth >= MAX_DEPTH) {
    issues.push({ message: `nested deeper than ${MAX_DEPTH} levels`, path: [...path] });
    return;
  }
  if (seen.has(value)) {
    issues.push({ message: "circular reference", path: [...path] });
    return;
  }
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      check(value[i], path, depth + 1, issues, seen);
      path.pop();
    }
  } else {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      const name = (value as object).constructor?.name ?? "object";
      issues.push({ message: `a ${name} instance is not plain JSON (convert it first)`, path: [...path] });
    } else {
      for (const key of Object.keys(value)) {
        const forbidden = forbiddenKey(key, (value as Record<string, unknown>)[key]);
        if (forbidden !== undefined) {
          issues.push({ message: forbidden, path: [...path, key] });
          continue;
        }
        path.push(key);
        check((value as Record<string, unknown>)[key], path, depth + 1, issues, seen);
        path.pop();
      }
    }
  }
  seen.delete(value);
}

/**
 * Parses untrusted JSON text: rejects nesting deeper than `maxDepth` (checked on the text before
 * parsing), any `__proto__` key and any `constructor` key holding an object or array
 * (`forbiddenKey`). Throws a plain Error with the reason.
 */
export function parseUntrustedJson(text: string, maxDepth: number = MAX_DEPTH): unknown {
  // Nesting can only exceed maxDepth if there are more than maxDepth opening brackets: counting
  // them with indexOf is ~20x cheaper than the exact scan, which then only runs for such texts.
  if (countOpenings(text, maxDepth) > maxDepth) assertDepth(text, maxDepth);
  const value: unknown = JSON.parse(text);
  // Cheap and almost always false; only then walk the parsed value. "\u" catches escaped keys.
  if (text.indexOf("\\u") !== -1 || text.indexOf("__proto__") !== -1 || text.indexOf("constructor") !== -1) {
    rejectForbiddenKeys(value);
  }
  return value;
}

function countOpenings(text: string, limit: number): number {
  let count = 0;
  for (let i = text.indexOf("{"); i !== -1 && count <= limit; i = text.indexOf("{", i + 1)) count++;
  for (let i = text.indexOf("["); i !== -1 && count <= limit; i = text.indexOf("[", i + 1)) count++;
  return count;
}

function assertDepth(text: string, maxDepth: number): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > maxDepth) throw new Error(`JSON nested deeper than ${maxDepth} levels`);
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
  }
}

function rejectForbiddenKeys(value: unknown): void {
  if (typeof value !== "object" || value === null) return;
  if (Array.isArray(value)) {
    for (const item of value) rejectForbiddenKeys(item);
    return;
  }
  for (const key of Object.keys(value)) {
    const child = (value as Record<string, unknown>)[key];
    const forbidden = forbiddenKey(key, child);
    if (forbidden !== undefined) throw new Error(`forbidden key "${key}": ${forbidden}`);
    rejectForbiddenKeys(child);
  }
}

/** UTF-8 byte length of a string, without allocating. */
export function utf8Length(text: string): number {
  return Buffer.byteLength(text, "utf8");
}
