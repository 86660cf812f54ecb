/**
 * What the worker keeps per delivery it holds (buffered or running), the handler's context object,
 * and the helpers that read them: split from worker.ts, which keeps the scheduling.
 */
import type { Delivery } from "../broker.js";
import { infoOf } from "../client.js";
import type { JobDefinition } from "../define-job.js";
import { decodeEnvelope, type Envelope, fromLocalEnvelope } from "../envelope.js";
import type { JobInfo } from "../events.js";
import type { PriorityLevel } from "../priority.js";
import type { JobContext, JobHandler } from "../worker.js";

/** A job's definition with its handler. */
export interface Registered {
  readonly job: JobDefinition<unknown, unknown>;
  readonly handler: JobHandler<unknown, unknown>;
}

/** A delivery the worker holds: buffered, running, or settling. */
export interface Held {
  readonly delivery: Delivery;
  readonly envelope: Envelope;
  readonly reg: Registered;
  readonly level: PriorityLevel;
  /**
   * Deliveries of the message not settled by a handler, this one included: the broker's
   * `deliveryCount` plus the envelope's `priorDeliveries` (carried over when a worker handed it back unrun).
   */
  readonly count: number;
  /** Date.now() when the last heartbeat was sent (or the delivery arrived). */
  leaseAt: number;
  /** Date.now() when the lease last confirmed began: the delivery, or the sending of the last heartbeat the broker confirmed. */
  leaseConfirmedAt: number;
  leaseLost: boolean;
  controller: AbortController | undefined;
  shutdownAborted: boolean;
  done: boolean;
  job: JobInfo | undefined;
  startedAt: number;
  /** Date.now() when it entered the buffer (priority aging). */
  readonly bufferedAt: number;
  /** clock.now() after which the pending handler times out (Infinity while not awaiting one). */
  deadline: number;
  /** Links in the running list. */
  prev: Held | undefined;
  next: Held | undefined;
}

/**
 * The handler's second argument. The AbortController is created only when a handler reads
 * `signal` or the job is aborted: creating one per job costs more than a no-op job itself.
 */
export class HandlerContext<Ctx> implements JobContext<Ctx> {
  readonly context: Ctx;
  readonly #item: Held;
  constructor(context: Ctx, item: Held) {
    this.context = context;
    this.#item = item;
  }
  get job(): JobInfo {
    return jobOf(this.#item);
  }
  get signal(): AbortSignal {
    this.#item.controller ??= new AbortController();
    return this.#item.controller.signal;
  }
}

/**
 * The envelope as received, payload included: the handler got the payload object and may have
 * changed it, and a retry or a dead letter must carry the job as it was sent, not as it was left.
 */
export function asReceived(delivery: Delivery, envelope: Envelope): Envelope {
  if (delivery.local !== undefined) return fromLocalEnvelope(delivery.local);
  try {
    return decodeEnvelope(delivery.body, Number.POSITIVE_INFINITY);
  } catch {
    return envelope;
  }
}

/** Most bytes of an oversized undecodable message its dead letter keeps: enough to tell what it was. */
const OVERSIZE_KEPT_BYTES = 65_536;

/**
 * The raw body of an undecodable message as its dead letter keeps it: whole when within the
 * worker's `maxBytes`, else only its first bytes (at most 64 KiB, cut on a character boundary), so a
 * 10 MB message written by someone else never becomes a 10 MB dead letter, nor costs a copy of itself.
 */
export function boundedRaw(body: string, maxBytes: number): string {
  if (body.length * 3 <= maxBytes || Buffer.byteLength(body, "utf8") <= maxBytes) return body;
  // encodeInto writes whole characters only and never more than the buffer: no copy of the whole body.
  const head = new Uint8Array(Math.min(maxBytes, OVERSIZE_KEPT_BYTES));
  const { written } = new TextEncoder().encodeInto(body, head);
  return Buffer.from(head.buffer, 0, written).toString("utf8");
}

/** The event view of a held job, built once and only when someone needs it. */
export function jobOf(item: Held): JobInfo {
  item.job ??= infoOf(item.envelope);
  return item.job;
}

export function abortItem(item: Held, reason: unknown): void {
  item.controller ??= new AbortController();
  item.controller.abort(reason);
}
