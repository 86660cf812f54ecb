/**
 * The conformance suite every `@jobs` broker adapter runs, for vitest. An adapter's test file:
 *
 *   import { runConformance } from "@jobs/conformance";
 *   runConformance({ name: "redis", createBroker: () => createRedisBroker({ url }) });
 *
 * Each group function (`transportLeases`, `jobSemanticsRetries`, …) registers one group alone.
 * `runStoreConformance` is the suite every JobStore runs (`storeClaims`, `storeFences`, … alone).
 */

export { capabilityTable, docsCapabilityTable, storeCapabilityTable } from "./capability-table.js";
export { jobSemanticsCodec } from "./cases/jobs-codec.js";
export { jobSemanticsEnqueueValidation } from "./cases/jobs-enqueue.js";
export { jobSemanticsExecution, jobSemanticsShutdown } from "./cases/jobs-execution.js";
export { jobSemanticsFirstConnection } from "./cases/jobs-first-connection.js";
export { jobSemanticsPoisonMessages } from "./cases/jobs-poison.js";
export { jobSemanticsRecords } from "./cases/jobs-records.js";
export { jobSemanticsRetries } from "./cases/jobs-retries.js";
export { jobSemanticsScheduling } from "./cases/jobs-scheduling.js";
export { jobSemanticsTracing } from "./cases/jobs-tracing.js";
export { transportClose } from "./cases/transport-close.js";
export { transportCompetingConsumers, transportIsolation, transportPrefetch, transportRoundTrip } from "./cases/transport-delivery.js";
export { transportReconnect, transportRestart } from "./cases/transport-faults.js";
export { transportInspection } from "./cases/transport-inspection.js";
export { transportLeases, transportRedelivery } from "./cases/transport-leases.js";
export { transportDedupe, transportDelays, transportPayloadLimit, transportPriority } from "./cases/transport-publish-options.js";
export { transportSettlement } from "./cases/transport-settlement.js";
export { createFaultProxy, type FaultProxy, type FaultProxyMode, type FaultProxyOptions } from "./fault-proxy.js";
export {
  type DefiniteConnectionErrorExpectation,
  expectDefiniteConnectionError,
  type FirstCallOutcome,
  firstCalls,
} from "./first-calls.js";
export type {
  BrokerFactory,
  BrokerFactoryContext,
  ConformanceEndpoint,
  ConformanceOptions,
  FirstConnectionServer,
} from "./options.js";
export {
  type PrivatePostgres,
  type PrivateRabbitMQ,
  type PrivateRabbitMQOptions,
  redisServerArgs,
  startPrivateNats,
  startPrivatePostgres,
  startPrivateRabbitMQ,
  startPrivateRedis,
} from "./private-brokers.js";
export { type ConformanceGroup, jobSemanticsGroups, runConformance, transportGroups } from "./run-conformance.js";
export {
  brokerUrlFromEnv,
  freePort,
  type PrivateServer,
  type PrivateServerOptions,
  startPrivateServer,
  waitForPort,
} from "./servers.js";
export { storeCancel } from "./store/cases/cancel.js";
export { storeClaims } from "./store/cases/claims.js";
export { storeClose } from "./store/cases/close.js";
export { storeFences } from "./store/cases/fences.js";
export { storeLeases } from "./store/cases/leases.js";
export { storeList } from "./store/cases/list.js";
export { storePrune } from "./store/cases/prune.js";
export { storePublishing } from "./store/cases/publishing.js";
export { storeRecords } from "./store/cases/records.js";
export { storeRestart } from "./store/cases/restart.js";
export { storeTransitions } from "./store/cases/transitions.js";
export { storeWatch } from "./store/cases/watch.js";
export type { StoreConformanceOptions, StoreFactory, StoreRestart } from "./store/options.js";
export { runStoreConformance, type StoreConformanceGroup, storeGroups } from "./store/run-store-conformance.js";
