import { describe } from "vitest";
import { jobSemanticsCodec } from "./cases/jobs-codec.js";
import { jobSemanticsEnqueueValidation } from "./cases/jobs-enqueue.js";
import { jobSemanticsExecution, jobSemanticsShutdown } from "./cases/jobs-execution.js";
import { jobSemanticsFirstConnection } from "./cases/jobs-first-connection.js";
import { jobSemanticsPoisonMessages } from "./cases/jobs-poison.js";
import { jobSemanticsRecords } from "./cases/jobs-records.js";
import { jobSemanticsRetries } from "./cases/jobs-retries.js";
import { jobSemanticsScheduling } from "./cases/jobs-scheduling.js";
import { jobSemanticsTracing } from "./cases/jobs-tracing.js";
import { transportClose } from "./cases/transport-close.js";
import { transportCompetingConsumers, transportIsolation, transportPrefetch, transportRoundTrip } from "./cases/transport-delivery.js";
import { transportReconnect, transportRestart } from "./cases/transport-faults.js";
import { transportInspection } from "./cases/transport-inspection.js";
import { transportLeases, transportRedelivery } from "./cases/transport-leases.js";
import { transportDedupe, transportDelays, transportPayloadLimit, transportPriority } from "./cases/transport-publish-options.js";
import { transportSettlement } from "./cases/transport-settlement.js";
import { assertConformanceOptions } from "./internal/harness.js";
import type { ConformanceOptions } from "./options.js";

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

/**
 * Every group of the job layer (core's client, worker and admin on the broker), in the order
 * `runConformance` runs them. With `createStore` they all run with a job store, and
 * `jobSemanticsRecords` (skipped without one) checks what the store adds.
 */
export const jobSemanticsGroups: readonly ConformanceGroup[] = [
  jobSemanticsExecution,
  jobSemanticsRetries,
  jobSemanticsPoisonMessages,
  jobSemanticsCodec,
  jobSemanticsScheduling,
  jobSemanticsShutdown,
  jobSemanticsEnqueueValidation,
  jobSemanticsRecords,
  jobSemanticsTracing,
  jobSemanticsFirstConnection,
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
