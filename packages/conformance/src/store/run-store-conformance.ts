import { describe, expect, it } from "vitest";
import { storeCancel } from "./cases/cancel.js";
import { storeClaims } from "./cases/claims.js";
import { storeClose } from "./cases/close.js";
import { storeFences } from "./cases/fences.js";
import { storeLeases } from "./cases/leases.js";
import { storeList } from "./cases/list.js";
import { storePrune } from "./cases/prune.js";
import { storePublishing } from "./cases/publishing.js";
import { storeRecords } from "./cases/records.js";
import { storeRestart } from "./cases/restart.js";
import { storeTransitions } from "./cases/transitions.js";
import { storeWatch } from "./cases/watch.js";
import { assertStoreConformanceOptions, registeredCases } from "./internal/fixture.js";
import type { StoreConformanceOptions } from "./options.js";

/** One group of the store suite: registers its cases with vitest for a store. */
export type StoreConformanceGroup = (options: StoreConformanceOptions) => void;

/** Every group of the store suite (the JobStore contract), in the order `runStoreConformance` runs them. */
export const storeGroups: readonly StoreConformanceGroup[] = [
  storeRecords,
  storeClaims,
  storeFences,
  storePublishing,
  storeTransitions,
  storeCancel,
  storeList,
  storeLeases,
  storePrune,
  storeWatch,
  storeClose,
  storeRestart,
];

/**
 * Registers the whole store suite with vitest for one JobStore, under `store conformance: <name>`.
 * Cases the store's capabilities (or the options) rule out are reported as skipped, with what they
 * need in their name; `options.skip` skips cases by their exact title.
 */
export function runStoreConformance(options: StoreConformanceOptions): void {
  assertStoreConformanceOptions(options);
  describe(`store conformance: ${options.name}`, () => {
    for (const register of storeGroups) register(options);
    // Collected after every group above, so a misspelt name in `skip` fails instead of skipping nothing.
    it.skipIf((options.skip ?? []).length === 0)("every name in options.skip is a case of the suite", () => {
      const known = registeredCases(options);
      expect((options.skip ?? []).filter((name) => !known.has(name))).toEqual([]);
    });
  });
}
