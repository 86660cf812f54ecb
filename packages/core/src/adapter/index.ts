/**
 * `@jobs/core/adapter`: what an adapter author needs. The Broker contract's types, the envelope
 * codec, the errors adapters throw, and the plumbing every adapter would otherwise write again
 * (redacted causes, request timeouts, the first connection's bound and auth-failure classification,
 * reconnect backoff, the consume-options and payload-size checks, the insecure-connection warning,
 * the broker's event emitter with its logging, write coalescing, the loopback test, deprecated
 * option aliases and the shape check of a user's client).
 */
export type {
  Broker,
  BrokerCapabilities,
  BrokerEventMap,
  ConsumeOptions,
  DeadLetter,
  DeadLetterReason,
  DeadLetterRecord,
  Delivery,
  On,
  OutgoingMessage,
  PublishOutcome,
  QueueCounts,
  RecordClaims,
  Subscription,
} from "../broker.js";
export { clock } from "../clock.js";
export { type Duration, parseDuration } from "../duration.js";
export {
  decodeEnvelope,
  ENVELOPE_VERSION,
  type Envelope,
  type EnvelopeError,
  type EnvelopeMeta,
  encodeEnvelope,
  type LocalEnvelope,
  MAX_ATTEMPTS,
  MAX_TIMER_MS,
} from "../envelope.js";
export {
  BrokerClosedError,
  BrokerConnectionError,
  EnqueueOutcomeUnknownError,
  EnvelopeDecodeError,
  InvalidOptionsError,
  JobsError,
  type JobsErrorCode,
  type JobsErrorOptions,
  LeaseLostError,
  PayloadTooLargeError,
  redact,
  type SerializedError,
  StoreClosedError,
  StoreConnectionError,
  serializeError,
  UnknownQueueError,
  UnsupportedError,
} from "../errors.js";
export { Emitter } from "../events.js";
export { BROKER_ENTRIES, brokerEvents } from "../internal/entries.js";
export {
  assertLogger,
  type LogEntry,
  type LogFields,
  type LoggedJob,
  type Logger,
  type LoggerOption,
  type LogLevel,
  Reporter,
} from "../logger.js";
export { PRIORITIES, type Priority, type PriorityLevel, priorityLevel } from "../priority.js";
export { physicalQueue, physicalQueues } from "../routing.js";
export {
  type CancelOutcome,
  type ClaimOutcome,
  type ClaimRequest,
  type FinishedStatus,
  type FinishRequest,
  type InsertOutcome,
  JOB_STATUSES,
  type JobStatus,
  type JobStore,
  type ListPage,
  type ListQuery,
  type NewJobRecord,
  type PruneRequest,
  type RenewOutcome,
  type RenewRequest,
  RUNNABLE_STATUSES,
  type StoreCapabilities,
  type StoredJob,
  TERMINAL_STATUSES,
  type TransitionRequest,
} from "../store.js";
export { redactedCause, redactedMessage } from "./cause.js";
export { assertConsumeOptions, payloadTooLarge } from "./checks.js";
export { coalesceWrites } from "./coalesce.js";
export {
  brokerAuthError,
  DEFAULT_CONNECT_TIMEOUT_MS,
  FirstConnection,
  isAuthFailure,
  notConnectedError,
} from "./connect.js";
export { brokerClosedError, brokerConnectionError } from "./errors.js";
export { isLoopbackHost } from "./host.js";
export { warnInsecureConnection } from "./insecure.js";
export { type ReconnectDelayOptions, reconnectDelay } from "./reconnect.js";
export { RequestTimeoutError, withTimeout } from "./request-timeout.js";
export { assertClientShape, hasMethods, renamedOption, warnDeprecated } from "./vocabulary.js";
