/**
 * Retention (docs/concepts/records.md): how long a store keeps finished records, per status, by
 * age and by count; per job definition, else per worker, else the defaults below.
 */
import { type Duration, parseDuration } from "./duration.js";
import { InvalidOptionsError } from "./errors.js";
import type { FinishedStatus } from "./store.js";

/** Keep records up to this old and/or only this many (the most recently finished); `"forever"` keeps all. */
export type RetainRule = { readonly age?: Duration; readonly count?: number } | "forever";

/** Retention per finished status. A status left out takes the next level's rule (definition, worker, default). */
export type RetainPolicy = { readonly [S in FinishedStatus]?: RetainRule };

/** A parsed rule: absent fields do not limit; both absent keeps everything. */
export interface RetainLimits {
  readonly ageMs?: number;
  readonly count?: number;
}

/** What is kept when nobody says: a day of successes, cancellations and voided enqueues, a week of dead jobs. */
export const DEFAULT_RETAIN: Readonly<Record<FinishedStatus, RetainLimits>> = {
  succeeded: { ageMs: 86_400_000 },
  dead: { ageMs: 604_800_000 },
  cancelled: { ageMs: 86_400_000 },
  discarded: { ageMs: 86_400_000 },
};

export const FINISHED_STATUSES: readonly FinishedStatus[] = ["succeeded", "dead", "cancelled", "discarded"];

/** Parses a `retain` option (`field` names it in errors). */
export function parseRetain(policy: unknown, field: string): Partial<Record<FinishedStatus, RetainLimits>> | undefined {
  if (policy === undefined) return undefined;
  if (typeof policy !== "object" || policy === null || Array.isArray(policy)) {
    throw new InvalidOptionsError(field, 'expected { succeeded?, dead?, cancelled?, discarded? } of { age?, count? } or "forever"');
  }
  const out: Partial<Record<FinishedStatus, RetainLimits>> = {};
  for (const [status, rule] of Object.entries(policy)) {
    if (!(FINISHED_STATUSES as readonly string[]).includes(status)) {
      throw new InvalidOptionsError(`${field}.${status}`, `expected one of ${FINISHED_STATUSES.join(", ")}`);
    }
    if (rule === undefined) continue;
    if (rule === "forever") {
      out[status as FinishedStatus] = {};
      continue;
    }
    if (typeof rule !== "object" || rule === null) {
      throw new InvalidOptionsError(`${field}.${status}`, 'expected { age?, count? } or "forever"');
    }
    const r = rule as { age?: Duration; count?: number };
    const limits: { ageMs?: number; count?: number } = {};
    if (r.age !== undefined) limits.ageMs = parseDuration(r.age, `${field}.${status}.age`);
    if (r.count !== undefined) {
      if (!Number.isInteger(r.count) || r.count < 0) {
        throw new InvalidOptionsError(`${field}.${status}.count`, `expected an integer of at least 0, got ${String(r.count)}`);
      }
      limits.count = r.count;
    }
    if (limits.ageMs === undefined && limits.count === undefined) {
      throw new InvalidOptionsError(`${field}.${status}`, 'give age, count or both (or "forever" to keep everything)');
    }
    out[status as FinishedStatus] = limits;
  }
  return out;
}
