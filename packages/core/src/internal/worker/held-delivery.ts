/**
 * What the worker keeps per delivery it holds (buffered, running or settling), the handler's
 * context object, and the helpers that read them. Every part of the worker reads these records.
 */
import type { Delivery } from "../../broker.js";
import { infoOf } from "../../client.js";
import { type Codec, IDENTITY_CODEC } from "../../codec.js";
import type { JobDefinition } from "../../define-job.js";
import { decodeEnvelope, type Envelope, fromLocalEnvelope } from "../../envelope.js";
import type { JobTimeoutError } from "../../errors.js";
import type { JobInfo } from "../../events.js";
import type { JobContext, JobHandler } from "../../job-context.js";
import type { PriorityLevel } from "../../priority.js";
import type { TracingSpan } from "../../tracing.js";

/** A job's definition with its handler. */
export interface Registered {
  readonly job: JobDefinition<unknown, unknown>;
  readonly handler: JobHandler<unknown, unknown>;
}

/** A delivery the worker holds: buffered, running, or settling. */
export interface HeldDelivery {
  readonly delivery: Delivery;
  readonly envelope: Envelope;
  readonly registered: Registered;
  readonly level: PriorityLevel;
  /**
   * Deliveries of the message not settled by a handler, this one included: the broker's
   * `deliveryCount` plus the envelope's `priorDeliveries` (carried over when a worker released it
   * unrun with its count kept).
   */
  readonly count: number;
  /** Date.now() when the last heartbeat was sent (or the delivery arrived). */
  heartbeatSentAt: number;
  /** Date.now() when the lease last confirmed began: the delivery, or the sending of the last heartbeat the broker confirmed. */
  leaseConfirmedAt: number;
  /** A heartbeat failed or the lease ran out in the buffer: the broker may hand the message to someone else. */
  leaseLost: boolean;
  /** Created only when the handler reads `signal` or the job is aborted. */
  controller: AbortController | undefined;
  /** Aborted by close(), not by its own fault: released without counting an attempt. */
  abortedByShutdown: boolean;
  /** The handler is over (returned, threw, timed out or its payload was invalid): settle once. */
  completed: boolean;
  /**
   * Timed out (and settled as failed) while its handler still runs: it stays in the running list,
   * holding its concurrency slot, until the handler returns or throws.
   */
  overdue: boolean;
  /** The timeout of an overdue job, until its failure is settled (its handler gets a turn to react to its signal first). */
  pendingTimeout: JobTimeoutError | undefined;
  /** The event view, built on first use (`jobOf`). */
  job: JobInfo | undefined;
  /** clock.now() when the handler was called. */
  startedAt: number;
  /** Date.now() when it entered the buffer (priority aging). */
  readonly bufferedAt: number;
  /** clock.now() after which the pending handler times out (Infinity while not awaiting one). */
  deadline: number;
  /** The record's fence under this worker's claim; 0 when the job is not claimed in a store. */
  fence: number;
  /** Date.now() when the claim was last confirmed (claimed or renewed). */
  claimConfirmedAt: number;
  /** A cancel was heard while it ran: a failure ends it `cancelled`, not retried. */
  cancelHeard: boolean;
  /** The handler's return value as JSON text, kept for the finish (store only). */
  resultJson: string | undefined;
  /** This attempt's `process` span, with tracing on. */
  span: TracingSpan | undefined;
  /** Links in the running list. */
  prev: HeldDelivery | undefined;
  next: HeldDelivery | undefined;
}

/**
 * The handler's second argument. The AbortController is created only when a handler reads
 * `signal` or the job is aborted: creating one per job costs more than a no-op job itself.
 */
export class HandlerContext<Ctx> implements JobContext<Ctx> {
  readonly context: Ctx;
  readonly #item: HeldDelivery;
  readonly #progress: ProgressWriter;
  constructor(context: Ctx, item: HeldDelivery, progress: ProgressWriter) {
    this.context = context;
    this.#item = item;
    this.#progress = progress;
  }
  get fence(): number {
    return this.#item.fence;
  }
  /** A getter, so that `({ progress }) => progress(…)` works: the function is made only when read. */
  get progress(): (value: unknown) => Promise<void> {
    const item = this.#item;
    const write = this.#progress;
    return (value) => write(item, value);
  }
  get job(): JobInfo {
    return jobOf(this.#item);
  }
  get signal(): AbortSignal {
    this.#item.controller ??= new AbortController();
    return this.#item.controller.signal;
  }
}

/** Writes a running job's progress (`ctx.progress`). */
export type ProgressWriter = (item: HeldDelivery, value: unknown) => Promise<void>;

/**
 * The envelope as received, payload included: the handler got the payload object and may have
 * changed it, and a retry or a dead letter must carry the job as it was sent, not as it was left.
 */
export function asReceived(delivery: Delivery, envelope: Envelope, codec: Codec = IDENTITY_CODEC): Envelope {
  // With a codec the body is what was checked (a local form is not used), and its payload stays sealed.
  if (delivery.local !== undefined && !codec.active) return fromLocalEnvelope(delivery.local);
  try {
    return decodeEnvelope(codec.verify(delivery.body), Number.POSITIVE_INFINITY);
  } catch {
    // Receipt decoded this very body; should it not decode again, never re-send a decrypted payload.
    return codec.encrypts ? { ...envelope, payload: null } : envelope;
  }
}

/** The event view of a held job, built once and only when someone needs it. */
export function jobOf(item: HeldDelivery): JobInfo {
  item.job ??= infoOf(item.envelope);
  return item.job;
}

/** Aborts the handler's signal (creating the controller if the handler never read it). */
export function abortHandler(item: HeldDelivery, reason: unknown): void {
  item.controller ??= new AbortController();
  item.controller.abort(reason);
}
