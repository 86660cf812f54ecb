/**
 * The option vocabulary shared by every adapter: renamed options kept for one release as
 * deprecated aliases (one Node deprecation warning each), and the shape check of a client the
 * user passes in (duck typing, never `instanceof`: two installed copies of a client library have
 * two different classes, and a check on the class refuses a perfectly good client).
 */
import { InvalidOptionsError } from "../errors.js";

const warned = new Set<string>();

/**
 * Says once per process, as a Node `DeprecationWarning` with `code` (so `--no-deprecation` and
 * `--throw-deprecation` apply), that something is deprecated. Outside Node, `console.warn` once.
 */
export function warnDeprecated(code: string, message: string): void {
  if (warned.has(code)) return;
  warned.add(code);
  const node = (globalThis as { process?: { emitWarning?: (message: string, options: { type: string; code: string }) => void } }).process;
  if (typeof node?.emitWarning === "function") node.emitWarning(message, { type: "DeprecationWarning", code });
  else console.warn(`[${code}] DeprecationWarning: ${message}`);
}

/**
 * The value of an option renamed from `oldName` to `newName`: the new one, or else the old one
 * (with a one-time deprecation warning). Both given is an `InvalidOptionsError` naming the old one.
 */
export function renamedOption<T>(adapter: string, options: object, oldName: string, newName: string): T | undefined {
  const record = options as Record<string, unknown>;
  const value = record[newName] as T | undefined;
  const old = record[oldName] as T | undefined;
  if (old === undefined) return value;
  if (value !== undefined) throw new InvalidOptionsError(oldName, `is the deprecated name of "${newName}": give only "${newName}"`);
  warnDeprecated(
    `JOBS_DEP_${adapter}_${oldName}`.toUpperCase(),
    `[jobs] [${adapter}] option "${oldName}" is deprecated and will be removed in the next major release: use "${newName}"`,
  );
  return old;
}

/** True when `value` is an object with a function under each of `methods` (own or inherited). */
export function hasMethods(value: unknown, methods: readonly string[]): boolean {
  if ((typeof value !== "object" && typeof value !== "function") || value === null) return false;
  const record = value as Record<string, unknown>;
  return methods.every((method) => typeof record[method] === "function");
}

/**
 * Checks that `value`, given as option `field`, has the methods the adapter calls on it, and
 * throws an `InvalidOptionsError` naming `expected` and the first missing method otherwise.
 */
export function assertClientShape(field: string, value: unknown, methods: readonly string[], expected: string): void {
  if ((typeof value !== "object" && typeof value !== "function") || value === null) {
    throw new InvalidOptionsError(field, `expected ${expected}`);
  }
  const missing = methods.find((method) => typeof (value as Record<string, unknown>)[method] !== "function");
  if (missing !== undefined) throw new InvalidOptionsError(field, `expected ${expected} (it has no ${missing}() method)`);
}
