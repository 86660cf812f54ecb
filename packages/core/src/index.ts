/**
 * `@jobs/core`: what applications use. Define jobs, enqueue them with a client, run them in a
 * worker, inspect queues with the admin API, and catch typed errors. Adapter authors find the
 * Broker contract and its plumbing in `@jobs/core/adapter`; tests find their helpers in
 * `@jobs/core/testing`.
 */
export { type Admin, type AdminOptions, createAdmin, type DeadLetterView } from "./admin.js";
export type { Backoff, BackoffFunction } from "./backoff.js";
export type { Broker, DeadLetterReason, QueueCounts } from "./broker.js";
export {
  type Client,
  type ClientOptions,
  createClient,
  type EnqueuedJob,
  type EnqueueItem,
  type EnqueueOptions,
  type ResultOptions,
} from "./client.js";
export type { CodecKey, CodecOptions, KeyRing } from "./codec.js";
export { defineJob, type HandlerPayloadOf, type JobDefinition, type JobOptions, type PayloadOf } from "./define-job.js";
export type { Duration } from "./duration.js";
export type { Metadata, TraceContext } from "./envelope.js";
export {
  BrokerClosedError,
  BrokerConnectionError,
  BulkEnqueueError,
  type BulkItemOutcome,
  CodecKeyError,
  DecryptError,
  EnqueueOutcomeUnknownError,
  InvalidOptionsError,
  JobCancelledError,
  JobFailedError,
  JobNotFoundError,
  JobsError,
  type JobsErrorCode,
  JobTimeoutError,
  JobValidationError,
  LeaseLostError,
  NonRetryableError,
  PayloadTooLargeError,
  type SerializedError,
  SignatureError,
  StoreClosedError,
  StoreConnectionError,
  UnknownJobError,
  UnknownQueueError,
  UnsupportedError,
  type ValidationIssue,
  WaitTimeoutError,
} from "./errors.js";
export { type ClientEventMap, type JobInfo, WORKER_EVENTS, type WorkerEventMap } from "./events.js";
export type { LogFields, LoggedJob, Logger, LoggerOption } from "./logger.js";
export { PRIORITIES, type Priority } from "./priority.js";
export type { CancelOutcome, JobPage, JobRecord, JobStatus, ListJobsOptions } from "./records.js";
export type { RetainPolicy, RetainRule } from "./retention.js";
export type { FinishedStatus, JobStore } from "./store.js";
export type {
  TracingApi,
  TracingAttributeValue,
  TracingOptions,
  TracingSpan,
  TracingSpanContext,
  TracingTracer,
  TracingTracerProvider,
} from "./tracing.js";
export { type CloseOptions, createWorker, type JobContext, type JobHandler, type Worker, type WorkerOptions } from "./worker.js";
