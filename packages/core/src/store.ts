/**
 * The JobStore contract: what a store implements (docs/concepts/records.md, ../shared/STATE.md).
 * A store remembers jobs; a broker moves them. Like the Broker, a store is a thin translation:
 * each operation below is one atomic step on one or more records, and every policy (when to
 * claim, what a finish writes, retries, the sweeper, retention) lives in core.
 *
 * Stores keep JSON values (payload, result, progress, errors, metadata) as the text core hands
 * them and never parse them. Every operation that takes an array is a batch: core collects the
 * calls of one event-loop turn and the store answers them in order, one outcome per item.
 * Timestamps a store sets itself (`updatedAt`, a claim's expiry) come from the store's own clock,
 * so that every process agrees on when a claim ran out.
 */
import type { Priority } from "./priority.js";

/**
 * Where a job is. `blocked` waits for parents (flows), `scheduled` for its `runAt`, `waiting` and
 * `retrying` for a worker; `active` runs under a claim; the last four are terminal.
 */
export type JobStatus = "blocked" | "scheduled" | "waiting" | "active" | "succeeded" | "retrying" | "dead" | "cancelled" | "discarded";

/** Every status, in lifecycle order. */
export const JOB_STATUSES: readonly JobStatus[] = [
  "blocked",
  "scheduled",
  "waiting",
  "active",
  "succeeded",
  "retrying",
  "dead",
  "cancelled",
  "discarded",
];

/** Statuses no transition leaves (except a requeue of `dead`). */
export const TERMINAL_STATUSES: readonly JobStatus[] = ["succeeded", "dead", "cancelled", "discarded"];

/** Statuses a claim accepts (with the same `gen`). */
export const RUNNABLE_STATUSES: readonly JobStatus[] = ["waiting", "retrying", "scheduled"];

/** What a store does, declared as data. */
export interface StoreCapabilities {
  /**
   * The store can tell this process when a job finishes (`watch`), so `result()` waits without
   * polling. `false`: core polls `get` with backoff.
   */
  readonly notify: boolean;
  /** Records live in this process only: the store pairs with an in-process broker only. */
  readonly inProcess: boolean;
  /** An acknowledged write survives a restart of the store's server (see its docs for the window). */
  readonly durable: boolean;
}

/** A record as core writes it on enqueue. */
export interface NewJobRecord {
  readonly id: string;
  readonly name: string;
  readonly queue: string;
  /** `waiting`, or `scheduled` when `runAt` is ahead. */
  readonly status: "waiting" | "scheduled";
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly priority: Priority;
  /** Searchable labels (`listJobs({ tag })`). */
  readonly tags: readonly string[];
  /** Caller metadata as JSON text, if any. */
  readonly metadataJson?: string;
  /** Trace context as JSON text, if any. */
  readonly traceJson?: string;
  /** The payload as JSON text. */
  readonly payloadJson: string;
  /** ms since the epoch, by the enqueuing process's clock. */
  readonly enqueuedAt: number;
  readonly runAt: number;
  /** Handler timeout in ms. */
  readonly timeout: number;
  /** The publish generation; 1 on enqueue. */
  readonly gen: number;
}

/** A record as a store returns it: the enqueued fields, what became of the job, and the bookkeeping of the invariants. */
export interface StoredJob extends Omit<NewJobRecord, "status"> {
  readonly status: JobStatus;
  /** Goes up with every claim; every later worker write is a compare-and-set on it. 0 before the first claim. */
  readonly fence: number;
  /** Claims of the current attempt (takeovers included; a hand-back gives one back): the crash-loop rule reads it. */
  readonly claims: number;
  /** When the current claim runs out, by the store's clock (ms since the epoch); 0 when not claimed. */
  readonly claimExpiresAt: number;
  /** The message of the current `gen` was accepted by the broker. */
  readonly published: boolean;
  /** `cancel` was asked while the job ran; the holder's next renewal hears it. */
  readonly cancelRequested: boolean;
  /** Who holds or last held the claim (`Worker` id). */
  readonly worker?: string;
  /** When the current attempt's handler was claimed, ms since the epoch (store clock). */
  readonly startedAt?: number;
  /** When the job reached a terminal status, ms since the epoch (store clock). */
  readonly finishedAt?: number;
  /** Last write, ms since the epoch (store clock). */
  readonly updatedAt: number;
  /** The handler's return value as JSON text (`succeeded` only). */
  readonly resultJson?: string;
  /** The last `ctx.progress` value as JSON text. */
  readonly progressJson?: string;
  /** The last failure (an `EnvelopeError`) as JSON text. */
  readonly errorJson?: string;
}

/** What `insert` did with one record. */
export type InsertOutcome = "inserted" | "exists";

/** One claim: a delivery of message `gen` of job `id` asks to run it. */
export interface ClaimRequest {
  readonly id: string;
  readonly gen: number;
  /** The claim's time to live: the worker's lease. */
  readonly ttlMs: number;
  /** The worker's id, kept in the record. */
  readonly worker: string;
}

/** What a claim found. */
export type ClaimOutcome =
  | {
      /**
       * Runnable with this `gen` (or `active` under an expired claim: a takeover): now `active`,
       * `fence + 1`, `claims + 1`, the claim running out `ttlMs` from now by the store's clock.
       */
      readonly outcome: "claimed";
      readonly fence: number;
      readonly claims: number;
      /** A cancel asked before this claim (while a previous holder ran it): abort at once. */
      readonly cancelRequested: boolean;
    }
  | {
      /** No record, a terminal one, or another `gen`: this message is not to run (ack it unrun). */
      readonly outcome: "stale";
      readonly status?: JobStatus;
    }
  | {
      /** `active` under a live claim: hand the message back for `retryInMs` (until that claim runs out). */
      readonly outcome: "busy";
      readonly retryInMs: number;
    };

/** A heartbeat of one claim. */
export interface RenewRequest {
  readonly id: string;
  readonly fence: number;
  readonly ttlMs: number;
}

/** What a renewal found: `ok: false` when the record is no longer `active` under this `fence` (taken over, finished, pruned). */
export type RenewOutcome = { readonly ok: true; readonly cancelRequested: boolean } | { readonly ok: false };

/**
 * The end of an attempt, written only while the record is `active` under `fence`:
 * - `succeeded` with `resultJson`; `dead` or `cancelled` with `errorJson` (if any): terminal, `finishedAt` set;
 * - `retrying`: `attempt`, `runAt` and `errorJson` of the next attempt, `gen + 1`, unpublished, `claims` 0;
 * - `waiting`: handed back unrun (shutdown), `claims - 1`, same `gen`.
 * Every finish clears the claim and `cancelRequested`.
 */
export interface FinishRequest {
  readonly id: string;
  readonly fence: number;
  readonly status: "succeeded" | "retrying" | "dead" | "cancelled" | "waiting";
  readonly resultJson?: string;
  readonly errorJson?: string;
  /** `retrying` only: the next attempt. */
  readonly attempt?: number;
  /** `retrying` only: when the next attempt is due. */
  readonly runAt?: number;
}

/** A conditional status change outside a claim: discard a voided enqueue, requeue a dead job. */
export interface TransitionRequest {
  readonly id: string;
  /** Applies only when the record's status is one of these … */
  readonly from: readonly JobStatus[];
  /** … and, when given, its `gen` is this. */
  readonly gen?: number;
  readonly to: JobStatus;
  /** `gen + 1` and unpublished (the caller publishes the new generation). */
  readonly bumpGen?: boolean;
  /** With `bumpGen`: the attempt to restart at (a requeue starts over at 1). */
  readonly attempt?: number;
  /** New due time. */
  readonly runAt?: number;
}

/** What `cancel` did. */
export type CancelOutcome =
  /** Was `blocked`, `scheduled`, `waiting` or `retrying`: now `cancelled`, and never starts. */
  | { readonly outcome: "cancelled" }
  /** Was `active`: `cancelRequested` is set; the handler's signal fires at its next renewal. */
  | { readonly outcome: "cancel-requested" }
  /** Already terminal: nothing changed. */
  | { readonly outcome: "finished"; readonly status: JobStatus }
  /** No such record. */
  | { readonly outcome: "not-found" };

/** A page of records, oldest enqueue first. */
export interface ListQuery {
  readonly queue?: string;
  readonly name?: string;
  readonly status?: JobStatus;
  readonly tag?: string;
  /** Where the previous page ended (`ListPage.cursor`). */
  readonly cursor?: string;
  /** 1 to 1000. */
  readonly limit: number;
}

/**
 * One page of `list`. A store that bounds the work of one call (an index scan with sparse
 * matches) may return fewer than `limit` records, even none, with a cursor: only the last page
 * has no cursor.
 */
export interface ListPage {
  readonly jobs: readonly StoredJob[];
  /** Pass as `cursor` for the next page; absent on the last one. */
  readonly cursor?: string;
}

/** Statuses retention removes records of. */
export type FinishedStatus = "succeeded" | "dead" | "cancelled" | "discarded";

/** One retention rule applied by the pruner: records of job `name` in `status`. */
export interface PruneRequest {
  readonly name: string;
  readonly status: FinishedStatus;
  /** Remove those whose `finishedAt` is more than this long ago by the store's clock. */
  readonly olderThanMs?: number;
  /** Keep only this many, the most recently finished; remove the others. */
  readonly keep?: number;
  /** Remove at most this many in this call (the pruner calls again while it removes this many). */
  readonly limit: number;
}

/** The contract every store implements. */
export interface JobStore {
  /** Short name for messages and reports, e.g. "redis". */
  readonly name: string;
  readonly capabilities: StoreCapabilities;
  /** Inserts each record unless its id exists (any status): the record dedupes ids. Unpublished. */
  insert(records: readonly NewJobRecord[]): Promise<InsertOutcome[]>;
  /** Marks message `gen` of each job published (no-op when the record moved to another `gen` or is gone). */
  markPublished(marks: readonly { readonly id: string; readonly gen: number }[]): Promise<void>;
  /** Claims each job for one delivery (see `ClaimOutcome`). */
  claim(requests: readonly ClaimRequest[]): Promise<ClaimOutcome[]>;
  /** Renews each claim for `ttlMs` from now, if still held under `fence`. */
  renew(requests: readonly RenewRequest[]): Promise<RenewOutcome[]>;
  /** Ends each attempt; `false` where the record is not `active` under `fence` (nothing written). */
  finish(requests: readonly FinishRequest[]): Promise<boolean[]>;
  /** Sets the progress of a job `active` under `fence`; `false` when it is not (nothing written). */
  progress(id: string, fence: number, progressJson: string): Promise<boolean>;
  /** Applies a conditional transition; resolves to the record after it, or undefined when the condition failed. */
  transition(request: TransitionRequest): Promise<StoredJob | undefined>;
  /** Cancels a job (see `CancelOutcome`). */
  cancel(id: string): Promise<CancelOutcome>;
  /** The record, or undefined. */
  get(id: string): Promise<StoredJob | undefined>;
  /** Records matching every given filter, oldest enqueue first, `limit` at most. */
  list(query: ListQuery): Promise<ListPage>;
  /**
   * Records not terminal, not `blocked` or `active`, whose current `gen` is unpublished and
   * unchanged for `olderThanMs` by the store's clock (the sweeper publishes them), oldest first.
   */
  unpublished(olderThanMs: number, limit: number): Promise<StoredJob[]>;
  /**
   * Removes the records one retention rule selects (`olderThanMs` or beyond `keep`, whichever
   * removes more), oldest finish first, at most `limit`; resolves to how many it removed. A removed
   * id is free again: a later insert with it is new.
   */
  prune(request: PruneRequest): Promise<number>;
  /**
   * Takes or renews the lease `name` for `owner` for `ttlMs`; `false` while another owner holds it.
   * Leases only save work (one sweeper, one pruner): correctness never rests on them.
   */
  lease(name: string, owner: string, ttlMs: number): Promise<boolean>;
  /**
   * Calls `listener` with the id and status of every job that reaches a terminal status from now on
   * (any process), until the returned function is called. Only when `capabilities.notify`.
   */
  watch?(listener: (id: string, status: JobStatus) => void): Promise<() => void>;
  /** Releases connections. Idempotent. */
  close(): Promise<void>;
}
