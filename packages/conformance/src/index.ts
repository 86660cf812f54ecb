/**
 * The conformance suite every `@jobs` broker adapter runs, for vitest. An adapter's test file:
 *
 *   import { runConformance } from "@jobs/conformance";
 *   runConformance({ name: "redis", createBroker: () => createRedisBroker({ url }) });
 *
 * Each group function (`transportLeases`, `jobSemanticsRetries`, …) registers one group alone.
 */

export { capabilityTable, docsCapabilityTable } from "./capability-table.js";
export { createFaultProxy, type FaultProxy, type FaultProxyMode, type FaultProxyOptions } from "./fault-proxy.js";
export {
  jobSemanticsEnqueueValidation,
  jobSemanticsExecution,
  jobSemanticsPoisonMessages,
  jobSemanticsRetries,
  jobSemanticsScheduling,
  jobSemanticsShutdown,
} from "./job-semantics.js";
export type { BrokerFactory, BrokerFactoryContext, ConformanceEndpoint, ConformanceOptions } from "./options.js";
export {
  type PrivateRabbitMQ,
  type PrivateRabbitMQOptions,
  redisServerArgs,
  startPrivateNats,
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
export {
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
export { transportReconnect, transportRestart } from "./transport-faults.js";
