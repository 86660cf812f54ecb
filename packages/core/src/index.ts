export { type Admin, type AdminOptions, createAdmin, type DeadLetterView } from "./admin.js";
export { type Backoff, type BackoffFunction, compileBackoff, DEFAULT_BACKOFF } from "./backoff.js";
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
  Subscription,
} from "./broker.js";
export {
  type Client,
  type ClientOptions,
  createClient,
  type EnqueuedJob,
  type EnqueueItem,
  type EnqueueOptions,
  type EnqueueTap,
  infoOf,
  kTap,
} from "./client.js";
export { coalesceWrites } from "./coalesce.js";
export {
  assertMaxAttempts,
  assertTimeout,
  defineJob,
  type HandlerPayloadOf,
  JOB_DEFAULTS,
  type JobDefinition,
  type JobOptions,
  type PayloadOf,
} from "./define-job.js";
export { type Duration, parseDuration } from "./duration.js";
export {
  decodeEnvelope,
  ENVELOPE_VERSION,
  type Envelope,
  type EnvelopeError,
  type EnvelopeMeta,
  encodeEnvelope,
  encodeLocalEnvelope,
  fromLocalEnvelope,
  type LocalEnvelope,
  MAX_TIMER_MS,
  type Metadata,
  type TraceContext,
} from "./envelope.js";
export {
  BrokerClosedError,
  BrokerConnectionError,
  BulkEnqueueError,
  type BulkItemOutcome,
  EnqueueOutcomeUnknownError,
  EnvelopeDecodeError,
  InvalidOptionsError,
  JobsError,
  type JobsErrorCode,
  type JobsErrorOptions,
  JobTimeoutError,
  JobValidationError,
  LeaseLostError,
  NonRetryableError,
  PayloadTooLargeError,
  redact,
  type SerializedError,
  serializeError,
  UnknownJobError,
  UnknownQueueError,
  UnsupportedError,
  type ValidationIssue,
} from "./errors.js";
export { type ClientEventMap, Emitter, type JobInfo, WORKER_EVENTS, type WorkerEventMap } from "./events.js";
export { isLoopbackHost } from "./host.js";
export { clock } from "./internal/clock.js";
export { physicalQueue, physicalQueues } from "./internal/routing.js";
export { assertJobId, assertJobName, assertQueueName } from "./names.js";
export { PRIORITIES, type Priority, type PriorityLevel, priorityLevel } from "./priority.js";
export {
  type CloseOptions,
  createWorker,
  type JobContext,
  type JobHandler,
  type Worker,
  type WorkerOptions,
} from "./worker.js";
