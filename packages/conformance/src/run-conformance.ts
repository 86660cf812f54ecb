import { describe } from "vitest";
import { assertConformanceOptions } from "./internal/harness.js";
import {
  jobSemanticsEnqueueValidation,
  jobSemanticsExecution,
  jobSemanticsPoisonMessages,
  jobSemanticsRetries,
  jobSemanticsScheduling,
  jobSemanticsShutdown,
} from "./job-semantics.js";
import type { ConformanceOptions } from "./options.js";
import {
  transportClose,
  transportCompetingConsumers,
  transportDedupe,
  transportDelays,
  transportInspection,
  transportIsolation,
  transportLeases,
  transportPayloadLimit,
  transportPrefetch,
  transportPriority,
  transportRedelivery,
  transportRoundTrip,
  transportSettlement,
} from "./transport.js";
import { transportReconnect, transportRestart } from "./transport-faults.js";

/** One group of the suite: registers its cases with vitest for a broker. */
export type ConformanceGroup = (options: ConformanceOptions) => void;

/** Every group of the transport layer (the Broker contract alone), in the order `runConformance` runs them. */
export const transportGroups: readonly ConformanceGroup[] = [
  transportRoundTrip,
  transportCompetingConsumers,
  transportRedelivery,
  transportLeases,
  transportSettlement,
  transportDelays,
  transportPriority,
  transportPrefetch,
  transportIsolation,
  transportClose,
  transportDedupe,
  transportInspection,
  transportPayloadLimit,
  transportReconnect,
  transportRestart,
];

/** Every group of the job layer (core's client, worker and admin on the broker), in the order `runConformance` runs them. */
export const jobSemanticsGroups: readonly ConformanceGroup[] = [
  jobSemanticsExecution,
  jobSemanticsRetries,
  jobSemanticsPoisonMessages,
  jobSemanticsScheduling,
  jobSemanticsShutdown,
  jobSemanticsEnqueueValidation,
];

/**
 * Registers the whole conformance suite with vitest for one broker: every transport group, then
 * every job-semantics group, under `conformance: <name>`. Cases a broker's capabilities (or the
 * options) rule out are reported as skipped, with what they need in their name.
 */
export function runConformance(options: ConformanceOptions): void {
  assertConformanceOptions(options);
  describe(`conformance: ${options.name}`, () => {
    for (const register of transportGroups) register(options);
    for (const register of jobSemanticsGroups) register(options);
  });
}
