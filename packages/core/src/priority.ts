import { InvalidOptionsError } from "./errors.js";

/** Job priorities, lowest first. */
export const PRIORITIES: readonly ["trivial", "low", "normal", "high", "critical"] = ["trivial", "low", "normal", "high", "critical"];

/** A job priority. `normal` unless a definition or an enqueue call says otherwise. */
export type Priority = (typeof PRIORITIES)[number];

/** The numeric level a broker sees: 0 (trivial) … 4 (critical). */
export type PriorityLevel = 0 | 1 | 2 | 3 | 4;

/** Converts a priority name to its level, throwing `InvalidOptionsError` for an unknown name. */
export function priorityLevel(priority: Priority, field = "priority"): PriorityLevel {
  const level = PRIORITIES.indexOf(priority);
  if (level < 0) {
    throw new InvalidOptionsError(field, `expected one of ${PRIORITIES.join(", ")}, got ${String(priority)}`);
  }
  return level as PriorityLevel;
}
