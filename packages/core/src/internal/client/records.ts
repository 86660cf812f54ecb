/**
 * The client's store half (docs/concepts/records.md): the record written before each publish and
 * what a publish outcome means for it (rule 1), the lookups (`getJob`, `listJobs`), `cancel`,
 * `result()`, and the handle of an accepted job.
 */
import type { PublishOutcome } from "../../broker.js";
import type { Codec } from "../../codec.js";
import { parseDuration } from "../../duration.js";
import type { EnqueuedJob, ResultOptions } from "../../enqueue.js";
import type { EnvelopeMeta } from "../../envelope.js";
import { EnqueueOutcomeUnknownError, InvalidOptionsError, JobsError, redact } from "../../errors.js";
import type { Priority } from "../../priority.js";
import { type CancelOutcome, type JobPage, type JobRecord, type ListJobsOptions, newRecord, recordOf, StoreLink } from "../../records.js";
import { type InsertOutcome, JOB_STATUSES, type JobStore } from "../../store.js";
import { ResultWaiter } from "../store/results.js";
import type { Prepared } from "./prepare.js";

/** Store calls one `listJobs` page may take to fill up. */
const LIST_CALLS = 10;

/** Whatever answers `result(id)` for a handle: the client. */
interface ResultSource {
  result<R>(id: string, options?: ResultOptions): Promise<R>;
}

/** A job the broker accepted, with `result()` on its prototype (no closure per job). */
export class Handle implements EnqueuedJob {
  readonly id: string;
  readonly name: string;
  readonly queue: string;
  readonly runAt: number;
  readonly priority: Priority;
  readonly duplicate: boolean;
  readonly #source: ResultSource;
  constructor(meta: EnvelopeMeta, duplicate: boolean, source: ResultSource) {
    this.id = meta.id;
    this.name = meta.name;
    this.queue = meta.queue;
    this.runAt = meta.runAt;
    this.priority = meta.priority;
    this.duplicate = duplicate;
    this.#source = source;
  }
  result<R = unknown>(options?: ResultOptions): Promise<R> {
    return this.#source.result<R>(this.id, options);
  }
}

/** A client's records: one per client with a store. */
export class ClientRecords {
  readonly link: StoreLink;
  readonly #brokerName: string;
  readonly #waiter: ResultWaiter;
  readonly #codec: Codec;

  constructor(store: JobStore, brokerName: string, codec: Codec) {
    this.link = new StoreLink(store);
    this.#brokerName = brokerName;
    this.#codec = codec;
    this.#waiter = new ResultWaiter(store);
  }

  /**
   * Writes the record of a job before its publish (docs/concepts/records.md, rule 1). Resolves
   * "exists" when the id has a record already (a duplicate: nothing is published). A store error
   * that may have committed the record rejects as outcome-unknown: the sweeper may publish it later.
   */
  async insert(p: Prepared): Promise<InsertOutcome> {
    try {
      return await this.link.insert.add(newRecord(p.local, p.tags, p.local.meta.enqueuedAt));
    } catch (error) {
      throw asStoreWriteError(error, this.link.store.name);
    }
  }

  /**
   * What a publish outcome means for a recorded job: accepted marks it published (off the caller's
   * path); a definite rejection voids the record first (`discarded`), so a job its caller saw
   * rejected never runs. Should the void fail, the caller hears outcome-unknown.
   */
  async afterPublish(p: Prepared, outcome: PublishOutcome | undefined): Promise<JobsError | undefined> {
    const id = p.local.meta.id;
    if (outcome?.ok) {
      this.link.published(id, 1, reportStoreError);
      return undefined;
    }
    const error = outcome?.error ?? new EnqueueOutcomeUnknownError(`[jobs] [${this.#brokerName}] publish returned no outcome`);
    if (error.code === "enqueue-outcome-unknown") return error;
    try {
      await this.link.store.transition({ id, from: ["waiting", "scheduled"], gen: 1, to: "discarded" });
      return error;
    } catch (voidError) {
      return new EnqueueOutcomeUnknownError(
        `[jobs] [${this.#brokerName}] rejected the job (${error.message}) and its record could not be voided; the sweeper may still publish it`,
        { cause: voidError },
      );
    }
  }

  async getJob(id: string): Promise<JobRecord | null> {
    if (typeof id !== "string" || id.length === 0) throw new InvalidOptionsError("id", "expected a job id");
    const job = await this.link.store.get(id);
    return job === undefined ? null : recordOf(job, this.#codec);
  }

  async listJobs(query: ListJobsOptions): Promise<JobPage> {
    const limitOption = query.limit ?? 100;
    if (!Number.isInteger(limitOption) || limitOption < 1 || limitOption > 1000) {
      throw new InvalidOptionsError("limit", `expected an integer from 1 to 1000, got ${String(limitOption)}`);
    }
    if (query.status !== undefined && !JOB_STATUSES.includes(query.status)) {
      throw new InvalidOptionsError("status", `expected one of ${JOB_STATUSES.join(", ")}`);
    }
    for (const key of ["queue", "name", "tag", "cursor"] as const) {
      const value = query[key];
      if (value !== undefined && (typeof value !== "string" || value.length === 0)) {
        throw new InvalidOptionsError(key, "expected a non-empty string");
      }
    }
    // A store may answer a short page with a cursor (it bounds each call's work): fill the page
    // from a few more calls, so a sparse filter does not hand the caller empty pages.
    const jobs: JobRecord[] = [];
    let cursor = query.cursor;
    for (let calls = 0; calls < LIST_CALLS && jobs.length < limitOption; calls++) {
      const page = await this.link.store.list({ ...query, limit: limitOption - jobs.length, ...(cursor === undefined ? {} : { cursor }) });
      for (const job of page.jobs) jobs.push(recordOf(job, this.#codec));
      cursor = page.cursor;
      if (cursor === undefined) break;
    }
    return cursor === undefined ? { jobs } : { jobs, cursor };
  }

  async cancel(id: string): Promise<CancelOutcome> {
    if (typeof id !== "string" || id.length === 0) throw new InvalidOptionsError("id", "expected a job id");
    return this.link.store.cancel(id);
  }

  async result(id: string, options: ResultOptions | undefined): Promise<unknown> {
    if (typeof id !== "string" || id.length === 0) throw new InvalidOptionsError("id", "expected a job id");
    const timeoutMs = parseDuration(options?.timeout ?? "30s", "timeout");
    return this.#waiter.wait(id, timeoutMs);
  }

  /** The client is closed: its result() waits end (`BrokerClosedError`) and the store subscription with them. */
  close(): Promise<void> {
    return this.#waiter.close();
  }
}

/** A lost "published" mark costs only a duplicate publish by the sweeper, which the claim drops: nothing to report. */
function reportStoreError(_error: unknown): void {}

/**
 * A record write that failed: definite when the store was closed or refused the credentials
 * (nothing was sent), else outcome-unknown, since the write may have committed and the sweeper
 * may publish it later (rule 1).
 */
function asStoreWriteError(error: unknown, storeName: string): JobsError {
  if (JobsError.isInstance(error) && (error.code === "store-closed" || (error.code === "store-connection" && !error.retryable))) {
    return error;
  }
  return new EnqueueOutcomeUnknownError(
    `[jobs] [${storeName}] writing the job's record failed: ${redact(String((error as Error)?.message ?? error))}; it may still run`,
    { cause: error },
  );
}
