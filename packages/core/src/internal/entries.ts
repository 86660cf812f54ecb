/**
 * Which events become log entries, with which level and code: the table behind
 * docs/concepts/logging.md. Messages come from serialized (redacted) errors and from warnings the
 * adapters wrote without credentials; payloads never appear.
 */
import type { Broker, BrokerEventMap } from "../broker.js";
import type { WorkerEventMap } from "../events.js";
import { Emitter, type EmitterReporting, kLogsTo } from "../events.js";
import { type EventEntries, type LoggerOption, loggedJob, prefixed, Reporter } from "../logger.js";

/** Entries of a broker's events. */
export const BROKER_ENTRIES: EventEntries<BrokerEventMap> = {
  "config-warning": (e) => ({ level: "warn", code: e.code, message: e.message }),
  "insecure-connection": (e) => ({ level: "warn", code: e.code, message: e.message }),
  error: (e, source) => ({ level: "error", code: "JOBS_BROKER_ERROR", message: prefixed(source, e.error.message), err: e.error }),
  disconnected: (e, source) => ({
    level: "warn",
    code: "JOBS_BROKER_DISCONNECTED",
    message: `[jobs] [${source}] connection lost, reconnecting${e.error === undefined ? "" : `: ${e.error.message}`}`,
    ...(e.error && { err: e.error }),
  }),
  reconnected: (_e, source) => ({ level: "info", code: "JOBS_BROKER_RECONNECTED", message: `[jobs] [${source}] reconnected` }),
};

/** Entries of a worker's events. */
export const WORKER_ENTRIES: EventEntries<WorkerEventMap> = {
  error: (e) => ({
    level: "error",
    code: "JOBS_WORKER_ERROR",
    message: `[jobs] [worker] ${e.job === undefined ? "" : `job ${e.job.name} ${e.job.id}: `}${e.error.message}`,
    err: e.error,
    ...(e.job && { job: loggedJob(e.job) }),
  }),
  "job.lease-lost": (e) => ({
    level: "warn",
    code: "JOBS_LEASE_LOST",
    message: `[jobs] [worker] ${e.job === undefined ? "a job" : `job ${e.job.name} ${e.job.id}`} lost its lease and will be delivered again: ${e.error.message}`,
    err: e.error,
    ...(e.job && { job: loggedJob(e.job) }),
  }),
  "job.overdue": (e) => ({
    level: "warn",
    code: "JOBS_JOB_OVERDUE",
    message: `[jobs] [worker] job ${e.job.name} ${e.job.id} timed out ${Math.round(e.overdueMs)} ms ago and its handler still runs (it ignores its signal); it keeps its concurrency slot until it ends`,
    job: loggedJob(e.job),
  }),
};

/** A broker's event emitter, reporting to `logger` under the adapter's name. Adapters create theirs with this. */
export function brokerEvents(adapter: string, logger: LoggerOption): Emitter<BrokerEventMap> {
  return new Emitter<BrokerEventMap>({ reporter: new Reporter(logger, adapter), entries: BROKER_ENTRIES });
}

/** The reporting of a worker's emitter. */
export function workerReporting(logger: LoggerOption): EmitterReporting<WorkerEventMap> {
  return { reporter: new Reporter(logger, "worker"), entries: WORKER_ENTRIES };
}

/**
 * Passes the broker's warnings and errors to the logger of a client, worker or admin built on it
 * (only when one was given: without it, the broker's own default applies). Returns the unsubscribe.
 */
export function forwardBrokerEntries(broker: Broker, logger: LoggerOption): () => void {
  if (logger === undefined || logger === false || typeof broker.on !== "function") return () => {};
  const reporter = new Reporter(logger, broker.name);
  const offs: (() => void)[] = [];
  for (const event of Object.keys(BROKER_ENTRIES) as (keyof BrokerEventMap)[]) {
    const build = BROKER_ENTRIES[event] as (data: unknown, source: string) => ReturnType<NonNullable<(typeof BROKER_ENTRIES)["error"]>>;
    const listener = Object.assign((data: unknown) => reporter.report(build(data, reporter.source), false), { [kLogsTo]: logger });
    offs.push(broker.on(event, listener));
  }
  return () => {
    for (const off of offs) off();
  };
}

// Clients and admins have no close(): their forwarding ends when they are collected. The listener
// holds the logger, never its owner, so a client made per request (with a per-request child
// logger) does not keep listeners on a long-lived broker.
const forwarding = new FinalizationRegistry<() => void>((off) => off());

/** `owner` (a client or admin), after passing its broker's entries to `logger` for as long as `owner` lives. */
export function forwardingBrokerEntries<T extends object>(broker: Broker, logger: LoggerOption, owner: T): T {
  const off = forwardBrokerEntries(broker, logger);
  if (logger !== undefined && logger !== false) forwarding.register(owner, off);
  return owner;
}
