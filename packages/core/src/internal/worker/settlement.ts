/**
 * Settlement: how the worker tells the broker what became of a delivery, with the events that
 * report it. One vocabulary, used throughout the worker:
 *
 * - **ack**: the handler succeeded; the message is removed.
 * - **retry**: the handler failed and attempts remain; the message is replaced by its next attempt
 *   (attempt + 1), due after the job's backoff.
 * - **dead-letter**: given up (no attempt left, `NonRetryableError`, invalid payload, undecodable
 *   body, unknown job, crash loop); the message moves to the queue's dead letters.
 * - **defer**: not due yet (its `runAt` is ahead); the same message comes back then.
 * - **release**: given back unrun, or aborted by shutdown, with `defer(0)`: no attempt is counted
 *   and the broker's delivery count starts afresh. `releaseExpired` is a release after the lease
 *   ran out, which the broker may refuse (nothing is lost then: it already took the message back).
 * - **release keeping count**: a crash suspect given back unrun (internal/worker/suspects.ts),
 *   through `retry` with the same attempt and its delivery count carried in the envelope
 *   (`priorDeliveries`), so the release neither raises nor resets the count.
 *
 * With a job store (docs/concepts/records.md), a claimed job's end is written to its record first
 * (rule 3: finish, then ack): `succeeded` with the result, `retrying` with the next generation,
 * `dead`, `cancelled`, or `waiting` when shutdown hands it back. Should the store refuse the write
 * (the claim was taken over) or be unreachable, the delivery is released instead of settled: the
 * broker hands it out again and the next claim decides whether it runs.
 *
 * Every settlement but `defer` and `release` is tracked (`pending`): close() waits for them, and a
 * suspect starts only once none is pending. A job aborted by shutdown is released through `fail`,
 * tracked like any failure.
 */
import type { DeadLetterReason, Delivery, OutgoingMessage } from "../../broker.js";
import { infoOf } from "../../client.js";
import { clock } from "../../clock.js";
import type { Codec } from "../../codec.js";
import { type Envelope, encodeEnvelope } from "../../envelope.js";
import { JobsError, LeaseLostError, serializeError } from "../../errors.js";
import type { Emitter, WorkerEventMap } from "../../events.js";
import type { StoreLink } from "../../records.js";
import type { ClaimOutcome, FinishRequest } from "../../store.js";
import { type AttemptOutcome, retryTrace } from "../tracing.js";
import { asReceived, type HeldDelivery, jobOf } from "./held-delivery.js";
import { withCarriedCount, withoutCarriedCount } from "./suspects.js";

/** What settlement needs from the worker. */
export interface SettlementHost {
  readonly events: Emitter<WorkerEventMap>;
  /** The broker's `maxDelayMs`: longer delays are cut to it (the job's `runAt` brings it back again). */
  readonly maxDelayMs: number;
  /** The worker's payload limit: the raw body an undecodable message's dead letter keeps. */
  readonly maxBytes: number;
  /** A tracked settlement is over, whichever way: the worker may be idle now. */
  settled(): void;
  /** The worker's job store, if it has one. */
  readonly link: StoreLink | undefined;
  /** Signs what the worker publishes; its envelopes keep the payload as received (sealed when encrypted). */
  readonly codec: Codec;
}

/** A delivery whose record this worker claimed under `fence`: a held job, or one it will not hold. */
export type Claimed = Pick<HeldDelivery, "delivery" | "envelope" | "fence">;

/** Most bytes of an oversized undecodable message its dead letter keeps: enough to tell what it was. */
const OVERSIZE_KEPT_BYTES = 65_536;

/**
 * The raw body of an undecodable message as its dead letter keeps it: whole when within the
 * worker's `maxBytes`, else only its first bytes (at most 64 KiB, cut on a character boundary), so a
 * 10 MB message written by someone else never becomes a 10 MB dead letter, nor costs a copy of itself.
 */
export function undecodableBody(body: string, maxBytes: number): string {
  if (body.length * 3 <= maxBytes || Buffer.byteLength(body, "utf8") <= maxBytes) return body;
  // encodeInto writes whole characters only and never more than the buffer: no copy of the whole body.
  const head = new Uint8Array(Math.min(maxBytes, OVERSIZE_KEPT_BYTES));
  const { written } = new TextEncoder().encodeInto(body, head);
  return Buffer.from(head.buffer, 0, written).toString("utf8");
}

/** Whether a failed attempt is retried: attempts remain, and it did not throw `NonRetryableError`. */
export function willRetry(envelope: Envelope, failure: unknown): boolean {
  return !isNonRetryable(failure) && envelope.attempt < envelope.maxAttempts;
}

/**
 * Only NonRetryableError skips the remaining attempts: other library errors a handler lets
 * escape (a closed producer during shutdown, say) are as transient as any other failure.
 */
function isNonRetryable(failure: unknown): boolean {
  return JobsError.isInstance(failure) && failure.code === "non-retryable";
}

/** What settling a failed attempt does with it, as its trace says (the branches of `Settlement.fail`). */
export function failureOutcome(item: HeldDelivery, failure: unknown): AttemptOutcome {
  if (item.abortedByShutdown) return "released";
  if (item.fence !== 0 && item.cancelHeard) return "cancelled";
  return willRetry(item.envelope, failure) ? "retried" : "dead-lettered";
}

/** Why a failure that is not retried is dead-lettered. */
function deadLetterReason(failure: unknown): DeadLetterReason {
  return isNonRetryable(failure) ? "non-retryable" : "max-attempts";
}

/** The next attempt's envelope carries the first attempt's span, when traced: later attempts link to it. */
function traced(item: HeldDelivery, next: Envelope): Envelope {
  return item.span === undefined ? next : { ...next, trace: retryTrace(next.trace, item.span) };
}

/** The broker refused because the lease is gone (or the broker closed): the message is back in its queue either way. */
function isLeaseLoss(error: unknown): boolean {
  return JobsError.isInstance(error) && (error.code === "lease-lost" || error.code === "broker-closed");
}

export class Settlement {
  readonly #host: SettlementHost;
  readonly #events: Emitter<WorkerEventMap>;
  #pending = 0;

  constructor(host: SettlementHost) {
    this.#host = host;
    this.#events = host.events;
  }

  /** Tracked settlements not yet answered by the broker. */
  get pending(): number {
    return this.#pending;
  }

  /** A settlement the broker refused: `job.lease-lost` when the lease is gone, else `error`. */
  report(error: unknown, envelope: Envelope | undefined): void {
    const job = envelope === undefined ? undefined : infoOf(envelope);
    const serialized = serializeError(error);
    if (isLeaseLoss(error)) {
      this.#events.emit("job.lease-lost", job === undefined ? { error: serialized } : { job, error: serialized });
    } else {
      this.#events.emit("error", job === undefined ? { error: serialized } : { error: serialized, job });
    }
  }

  /** The handler succeeded. The hot path: one promise reaction per job, no intermediate promises. */
  ack(item: HeldDelivery): void {
    if (item.fence !== 0) {
      if (item.delivery.finishAndAck !== undefined) this.#fusedAck(item);
      else this.#track(this.#recordedAck(item));
      return;
    }
    const durationMs = clock.now() - item.startedAt;
    this.#pending++;
    item.delivery.ack().then(
      () => {
        this.#pending--;
        if (this.#events.has("job.succeeded")) this.#events.emit("job.succeeded", { job: jobOf(item), durationMs });
        this.#host.settled();
      },
      (e: unknown) => {
        this.#pending--;
        this.report(e, item.envelope);
        this.#host.settled();
      },
    );
  }

  /**
   * A claimed job given back unrun (shutdown, or a fused delivery that arrived after it): `waiting`
   * in the record too, or the next worker would wait out the claim.
   */
  handBack(item: Claimed): void {
    this.#track(this.#handBack(item));
  }

  #handBack(item: Claimed): Promise<void> {
    return this.#finish(item, { status: "waiting" }).then(() => this.#release(item.delivery, item.envelope));
  }

  /** Succeeded with a record: `succeeded` (with the result) first, then the ack; one call when the broker is fused with the store. */
  async #recordedAck(item: HeldDelivery): Promise<void> {
    const durationMs = clock.now() - item.startedAt;
    const request: Omit<FinishRequest, "id" | "fence"> =
      item.resultJson === undefined ? { status: "succeeded" } : { status: "succeeded", resultJson: item.resultJson };
    if (!(await this.#finish(item, request))) return this.#release(item.delivery, item.envelope);
    return item.delivery.ack().then(
      () => {
        if (this.#events.has("job.succeeded")) this.#events.emit("job.succeeded", { job: jobOf(item), durationMs });
      },
      (e: unknown) => this.report(e, item.envelope),
    );
  }

  /**
   * Succeeded with a record, on a broker fused with the store: the finish and the ack are one call
   * (`Delivery.finishAndAck`). A hot path like the plain ack: one promise reaction per job.
   */
  #fusedAck(item: HeldDelivery): void {
    const durationMs = clock.now() - item.startedAt;
    const { delivery, envelope } = item;
    const request: FinishRequest =
      item.resultJson === undefined
        ? { id: envelope.id, fence: item.fence, status: "succeeded" }
        : { id: envelope.id, fence: item.fence, status: "succeeded", resultJson: item.resultJson };
    this.#pending++;
    (delivery as Required<Pick<Delivery, "finishAndAck">>).finishAndAck(request).then(
      (finished) => {
        this.#pending--;
        if (finished) {
          if (this.#events.has("job.succeeded")) this.#events.emit("job.succeeded", { job: jobOf(item), durationMs });
        } else {
          this.#refused(envelope);
          this.release(delivery, envelope);
        }
        this.#host.settled();
      },
      (e: unknown) => {
        this.#pending--;
        this.report(e, envelope);
        this.release(delivery, envelope);
        this.#host.settled();
      },
    );
  }

  /**
   * Writes the end of a claimed attempt (a held job, or a delivery claimed only to be dead-lettered).
   * False when it was not written: the store refused it (the claim was taken over:
   * `job.lease-lost`) or could not be reached (`error`).
   */
  async #finish(
    claimed: { readonly envelope: Envelope; readonly fence: number },
    request: Omit<FinishRequest, "id" | "fence">,
  ): Promise<boolean> {
    const link = this.#host.link as StoreLink;
    let ok: boolean;
    try {
      ok = await link.finish.add({ ...request, id: claimed.envelope.id, fence: claimed.fence });
    } catch (error) {
      this.report(error, claimed.envelope);
      return false;
    }
    if (!ok) this.#refused(claimed.envelope);
    return ok;
  }

  /** The store refused a finish: `job.lease-lost` (the job is released). */
  #refused(envelope: Envelope): void {
    const error = new LeaseLostError(
      "[jobs] the job's claim in the store was taken over or has ended; this worker's outcome was not written and the job is released",
    );
    this.#events.emit("job.lease-lost", { job: infoOf(envelope), error: serializeError(error) });
  }

  /** The handler failed (threw, rejected or timed out): retry, dead-letter, or release if shutdown aborted it. */
  fail(item: HeldDelivery, failure: unknown): void {
    this.#track(this.#fail(item, failure));
  }

  #fail(item: HeldDelivery, failure: unknown): Promise<void> {
    const { delivery, envelope } = item;
    // Aborted by shutdown, not by its own fault: no attempt is counted.
    if (item.abortedByShutdown) return item.fence === 0 ? this.#release(delivery, envelope) : this.#handBack(item);
    if (item.fence !== 0) return this.#recordedFail(item, failure);
    const events = this.#events;
    const job = jobOf(item);
    const durationMs = clock.now() - item.startedAt;
    const error = serializeError(failure);
    const retry = willRetry(envelope, failure);
    if (events.has("job.failed")) events.emit("job.failed", { job, durationMs, error, willRetry: retry });
    if (!retry) {
      return this.#deadLetter(delivery, asReceived(delivery, envelope, this.#host.codec), deadLetterReason(failure), failure);
    }
    const now = Date.now();
    const delay = Math.max(0, Math.ceil(item.registered.job.backoff(envelope.attempt, failure)));
    const next: Envelope = traced(item, {
      ...withoutCarriedCount(asReceived(delivery, envelope, this.#host.codec)),
      attempt: envelope.attempt + 1,
      runAt: now + delay,
      lastError: { ...error, at: now, attempt: envelope.attempt },
    });
    // Emitted before the broker call: once the broker has the next attempt it may deliver it
    // (even to this worker) before this promise's reactions run, and events must stay in order.
    // Should the retry fail, `job.lease-lost` or `error` follows and the broker redelivers.
    if (events.has("job.retrying")) events.emit("job.retrying", { job, delayMs: delay, error });
    return delivery.retry(this.#nextAttempt(item, next, delay)).catch((e: unknown) => this.report(e, envelope));
  }

  /** The wire text of an envelope core re-sends: signed when signing. */
  #encode(envelope: Envelope): string {
    const codec = this.#host.codec;
    return codec.active ? codec.sign(encodeEnvelope(envelope)) : encodeEnvelope(envelope);
  }

  /** The envelope with its payload as received: a decrypted payload is never sent again. */
  #sealed(delivery: Delivery, envelope: Envelope): Envelope {
    return this.#host.codec.encrypts ? { ...envelope, payload: asReceived(delivery, envelope, this.#host.codec).payload } : envelope;
  }

  /** The message of a job's next attempt, due after `delay` (cut to the broker's `maxDelayMs`). */
  #nextAttempt(item: HeldDelivery, next: Envelope, delay: number): OutgoingMessage {
    return {
      id: next.id,
      body: this.#encode(next),
      priority: item.level,
      delayMs: Math.min(delay, this.#host.maxDelayMs),
      dedupe: false,
    };
  }

  /** Failed with a record: `cancelled` (a cancel was heard), `retrying` (next generation, then the broker's retry) or `dead`. */
  async #recordedFail(item: HeldDelivery, failure: unknown): Promise<void> {
    const { delivery, envelope } = item;
    const events = this.#events;
    const job = jobOf(item);
    // A job cancelled before its handler started (startedAt 0) ran for no time.
    const durationMs = item.startedAt === 0 ? 0 : clock.now() - item.startedAt;
    const error = serializeError(failure);
    const now = Date.now();
    const lastError = { ...error, at: now, attempt: envelope.attempt };
    const errorJson = JSON.stringify(lastError);
    if (item.cancelHeard) {
      if (!(await this.#finish(item, { status: "cancelled", errorJson }))) return this.#release(delivery, envelope);
      return delivery.ack().then(
        () => {
          if (events.has("job.cancelled")) events.emit("job.cancelled", { job, durationMs });
        },
        (e: unknown) => this.report(e, envelope),
      );
    }
    const retry = willRetry(envelope, failure);
    if (events.has("job.failed")) events.emit("job.failed", { job, durationMs, error, willRetry: retry });
    if (!retry) {
      if (!(await this.#finish(item, { status: "dead", errorJson }))) return this.#release(delivery, envelope);
      return this.#deadLetter(delivery, asReceived(delivery, envelope, this.#host.codec), deadLetterReason(failure), failure);
    }
    const delay = Math.max(0, Math.ceil(item.registered.job.backoff(envelope.attempt, failure)));
    const gen = (envelope.gen ?? 1) + 1;
    const next: Envelope = traced(item, {
      ...withoutCarriedCount(asReceived(delivery, envelope, this.#host.codec)),
      attempt: envelope.attempt + 1,
      runAt: now + delay,
      lastError,
      gen,
    });
    if (!(await this.#finish(item, { status: "retrying", attempt: next.attempt, runAt: next.runAt, errorJson }))) {
      return this.#release(delivery, envelope);
    }
    if (events.has("job.retrying")) events.emit("job.retrying", { job, delayMs: delay, error });
    const link = this.#host.link as StoreLink;
    return delivery.retry(this.#nextAttempt(item, next, delay)).then(
      // Unmarked, the sweeper would publish it again after a while (the claim drops the duplicate).
      () => link.published(envelope.id, gen, () => {}),
      (e: unknown) => this.report(e, envelope),
    );
  }

  /** Dead-letters a held job: with a record, `dead` first (its claim), then the broker's dead letters as the backstop. */
  deadLetterHeld(item: HeldDelivery, reason: DeadLetterReason, error: unknown): void {
    if (item.fence === 0) {
      this.deadLetter(item.delivery, item.envelope, reason, error);
      return;
    }
    this.#track(this.#deadLetterClaimed(item.delivery, item.envelope, item.fence, reason, error));
  }

  /**
   * Dead-letters a decoded delivery given up at receipt, before any handler (unknown job, crash
   * loop), whose record `claim` claims first (with a store). Claimed, the record is finished `dead`
   * and then the message dead-lettered, as a handler's dead letter is: left runnable, the record
   * would contradict the dead letter and the admin's requeue, which revives only `dead` records,
   * would drop the message. A stale record's message is acked unrun, a busy one deferred until
   * that claim runs out; an unreachable store hands the delivery back after `retryMs`.
   */
  deadLetterUnclaimed(
    delivery: Delivery,
    envelope: Envelope,
    reason: DeadLetterReason,
    error: unknown,
    claim: Promise<ClaimOutcome>,
    retryMs: number,
  ): void {
    this.#track(
      claim.then(
        (outcome): Promise<void> | undefined => {
          if (outcome.outcome === "claimed") return this.#deadLetterClaimed(delivery, envelope, outcome.fence, reason, error);
          if (outcome.outcome === "stale") return delivery.ack().catch((e: unknown) => this.report(e, envelope));
          this.defer(delivery, envelope, Math.max(1, outcome.retryInMs));
          return undefined;
        },
        (e: unknown) => {
          this.report(e, envelope);
          this.defer(delivery, envelope, retryMs);
        },
      ),
    );
  }

  /** `dead` in the record under `fence`, then the broker's dead letters; released when the store refused the finish. */
  #deadLetterClaimed(delivery: Delivery, envelope: Envelope, fence: number, reason: DeadLetterReason, error: unknown): Promise<void> {
    const serialized = serializeError(error);
    const errorJson = JSON.stringify({ ...serialized, at: Date.now(), attempt: envelope.attempt });
    return this.#finish({ envelope, fence }, { status: "dead", errorJson }).then((ok) =>
      ok ? this.#deadLetter(delivery, envelope, reason, error) : this.#release(delivery, envelope),
    );
  }

  /** A delivery whose record says it must not run (terminal, another generation, no record): removed unrun. */
  ackUnrun(delivery: Delivery, envelope: Envelope): void {
    this.#track(delivery.ack().catch((e: unknown) => this.report(e, envelope)));
  }

  /** Dead-letters a delivery (`envelope` undefined: its body could not be decoded). */
  deadLetter(delivery: Delivery, envelope: Envelope | undefined, reason: DeadLetterReason, error: unknown): void {
    this.#track(this.#deadLetter(delivery, envelope, reason, error));
  }

  #deadLetter(delivery: Delivery, envelope: Envelope | undefined, reason: DeadLetterReason, error: unknown): Promise<void> {
    const failedAt = Date.now();
    const serialized = serializeError(error);
    const body =
      envelope === undefined
        ? undecodableBody(delivery.body, this.#host.maxBytes)
        : this.#encode({
            ...withoutCarriedCount(this.#sealed(delivery, envelope)),
            lastError: { ...serialized, at: failedAt, attempt: envelope.attempt },
          });
    return delivery.deadLetter({ body, reason, error: serialized, failedAt }).then(
      () => {
        if (this.#events.has("job.dead-lettered")) {
          this.#events.emit(
            "job.dead-lettered",
            envelope === undefined ? { reason, error: serialized } : { job: infoOf(envelope), reason, error: serialized },
          );
        }
      },
      (e: unknown) => this.report(e, envelope),
    );
  }

  /** Not due yet: the broker hands it out again after `delayMs` (cut to its `maxDelayMs`). Not tracked. */
  defer(delivery: Delivery, envelope: Envelope, delayMs: number): void {
    const cut = Math.min(delayMs, this.#host.maxDelayMs);
    delivery.defer(cut).then(
      () => {
        if (this.#events.has("job.deferred")) this.#events.emit("job.deferred", { job: infoOf(envelope), delayMs: cut });
      },
      (e: unknown) => this.report(e, envelope),
    );
  }

  /**
   * Gives a held job back unrun, due again after `delayMs` (`job.deferred`): another attempt of it
   * still runs on this worker. Claimed when it was fetched (a broker fused with the store), its
   * record goes back to `waiting` first, as on shutdown.
   */
  deferUnstarted(item: HeldDelivery, delayMs: number): void {
    const { delivery, envelope } = item;
    if (item.fence === 0) {
      this.defer(delivery, envelope, delayMs);
      return;
    }
    this.#track(this.#finish(item, { status: "waiting" }).then(() => this.defer(delivery, envelope, delayMs)));
  }

  /** Gives a delivery back unrun (`envelope` undefined: not decoded). Not tracked. */
  release(delivery: Delivery, envelope: Envelope | undefined): void {
    void this.#release(delivery, envelope);
  }

  #release(delivery: Delivery, envelope: Envelope | undefined): Promise<void> {
    return delivery.defer(0).catch((e: unknown) => this.report(e, envelope));
  }

  /**
   * Releases a buffered delivery whose lease ran out before a slot freed: the broker may already
   * have handed the message to someone else, or back to this worker, so it must not start here.
   * `defer(0)` is refused once the lease is gone (nothing is acked, no attempt counted) and frees
   * its prefetch slot; should the broker still hold the lease, the message just goes back to its queue.
   */
  releaseExpired(item: HeldDelivery): void {
    const { delivery, envelope } = item;
    if (!item.leaseLost) {
      item.leaseLost = true;
      const error = new LeaseLostError("[jobs] the lease of a buffered job ran out before it could start; it was not run");
      this.#events.emit("job.lease-lost", { job: jobOf(item), error: serializeError(error) });
    }
    this.#track(
      delivery.defer(0).catch((e: unknown) => {
        if (!isLeaseLoss(e)) this.report(e, envelope);
      }),
    );
  }

  /** Releases a crash suspect unrun with its count kept, back after `delayMs`. */
  releaseKeepingCount(item: HeldDelivery, delayMs: number): void {
    const { delivery, envelope } = item;
    this.#track(
      delivery
        .retry({
          id: envelope.id,
          body: this.#encode(withCarriedCount(item, asReceived(delivery, envelope, this.#host.codec))),
          priority: item.level,
          delayMs: Math.min(delayMs, this.#host.maxDelayMs),
          dedupe: false,
        })
        .catch((e: unknown) => this.report(e, envelope)),
    );
  }

  #track(operation: Promise<void>): void {
    this.#pending++;
    const done = (): void => {
      this.#pending--;
      this.#host.settled();
    };
    operation.then(done, done);
  }
}
