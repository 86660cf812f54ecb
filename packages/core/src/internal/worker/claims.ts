/**
 * The worker's store half (docs/concepts/records.md, rule 2: claim before run): the claim of each
 * delivery before its handler starts (or the one the broker made as it handed it out), what a
 * claim found (run, ack unrun, defer, dead-letter a crash loop, cancelled before it starts), the
 * renewal of running jobs' claims beside the lease heartbeat, the local deadline, `ctx.progress`,
 * and the hand-back of claimed jobs that will not run here.
 */
import type { DeadLetterReason, Delivery } from "../../broker.js";
import type { Codec } from "../../codec.js";
import { decodeEnvelope, type Envelope, fromLocalEnvelope } from "../../envelope.js";
import { JobCancelledError, JobsError, LeaseLostError, PayloadTooLargeError, serializeError } from "../../errors.js";
import type { Emitter, WorkerEventMap } from "../../events.js";
import { newRecord, type StoreLink } from "../../records.js";
import type { ClaimOutcome } from "../../store.js";
import { assertJsonValue, utf8Length } from "../json.js";
import { abortHandler, asReceived, type HeldDelivery, jobOf } from "./held-delivery.js";
import type { JobRunner } from "./run.js";
import type { Settlement } from "./settlement.js";

/** How long a delivery waits before it is offered again when the store could not be reached to claim it. */
export const STORE_RETRY_MS = 1_000;

/** What claims need from the worker. */
export interface ClaimsHost {
  readonly link: StoreLink;
  readonly events: Emitter<WorkerEventMap>;
  /** The worker's lease in ms: the claim's time to live. */
  readonly leaseMs: number;
  /** `maxDeliveries`: a job claimed more often than this is a crash loop. */
  readonly maxDeliveries: number;
  /** The worker's id, kept in the record. */
  readonly worker: string;
  /** Largest progress value kept, in bytes of JSON. */
  readonly maxResultBytes: number;
  /** The worker's codec: a record created at claim keeps the payload sealed. */
  readonly codec: Codec;
  readonly settlement: Pick<Settlement, "ackUnrun" | "defer" | "deadLetterHeld" | "deadLetterUnclaimed" | "report" | "handBack">;
  readonly runner: Pick<JobRunner<unknown>, "run" | "failed">;
  /** The jobs running now. */
  running(): Iterable<HeldDelivery>;
  /** The job will not run here (or is over): free its slot. */
  finished(item: HeldDelivery): void;
}

export class Claims {
  readonly #host: ClaimsHost;

  constructor(host: ClaimsHost) {
    this.#host = host;
  }

  /**
   * Claim before run (docs/concepts/records.md, rule 2): the delivery runs only if its record is
   * runnable with the same generation. A message with no generation (enqueued without a store, or
   * by another producer) gets its record now. Whatever does not run frees its slot.
   */
  claimAndRun(item: HeldDelivery): void {
    const { envelope, delivery } = item;
    // Claimed by the broker as it handed the delivery out (fused): decided now, no promise in between.
    if (delivery.claim !== undefined && envelope.gen !== undefined) {
      this.#claimed(item, delivery.claim);
      return;
    }
    const host = this.#host;
    this.claimRecord(envelope, delivery)
      .then((outcome) => this.#claimed(item, outcome))
      .catch((error: unknown) => {
        // The store is unreachable: hand the delivery back (not run), after a pause so the broker does not spin it.
        host.settlement.report(error, envelope);
        host.settlement.defer(delivery, envelope, STORE_RETRY_MS);
        host.finished(item);
      });
  }

  /**
   * Claims a delivery's record by its generation; a message with no generation gets its record
   * first. A delivery the broker claimed as it handed it out (fused with the store) needs no call.
   */
  claimRecord(envelope: Envelope, delivery: Delivery): Promise<ClaimOutcome> {
    if (delivery.claim !== undefined && envelope.gen !== undefined) return Promise.resolve(delivery.claim);
    const { link, leaseMs, worker } = this.#host;
    const claim = (): Promise<ClaimOutcome> => link.claim.add({ id: envelope.id, gen: envelope.gen ?? 1, ttlMs: leaseMs, worker });
    if (envelope.gen !== undefined) return claim();
    return link.insert
      .add(
        newRecord(
          { meta: { ...envelope, gen: 1 }, payloadJson: JSON.stringify(this.#payloadAsSent(envelope, delivery)) },
          [],
          envelope.enqueuedAt,
        ),
      )
      .then(claim);
  }

  /** The payload as the message carries it: sealed when encrypted, so the record never keeps it in clear. */
  #payloadAsSent(envelope: Envelope, delivery: Delivery): unknown {
    const codec = this.#host.codec;
    return codec.encrypts ? asReceived(delivery, envelope, codec).payload : envelope.payload;
  }

  /**
   * A decoded delivery given up at receipt (unknown job, crash loop): its record is claimed and
   * finished `dead` before the dead letter, as a handler's dead letter is (rule 3).
   */
  deadLetter(delivery: Delivery, envelope: Envelope, reason: DeadLetterReason, error: unknown): void {
    this.#host.settlement.deadLetterUnclaimed(delivery, envelope, reason, error, this.claimRecord(envelope, delivery), STORE_RETRY_MS);
  }

  /** What a claim found decides: run, ack unrun, defer until the holder's claim runs out, or dead-letter a crash loop. */
  #claimed(item: HeldDelivery, outcome: ClaimOutcome): void {
    const { settlement, runner, finished, maxDeliveries } = this.#host;
    const { envelope, delivery } = item;
    if (outcome.outcome === "stale") {
      settlement.ackUnrun(delivery, envelope);
      finished(item);
      return;
    }
    if (outcome.outcome === "busy") {
      settlement.defer(delivery, envelope, Math.max(1, outcome.retryInMs));
      finished(item);
      return;
    }
    // A claim the broker made at fetch time was confirmed then (receipt set both), not now.
    if (item.fence !== outcome.fence) {
      item.fence = outcome.fence;
      item.claimConfirmedAt = Date.now();
    }
    if (outcome.claims > maxDeliveries) {
      item.completed = true;
      const error = new JobsError(
        "non-retryable",
        `[jobs] claimed ${outcome.claims} times without finishing (its workers keep dying or losing the claim)`,
      );
      settlement.deadLetterHeld(item, "crash-loop", error);
      finished(item);
    } else if (outcome.cancelRequested) {
      item.cancelHeard = true;
      runner.failed(item, new JobCancelledError(`[jobs] job ${envelope.id} was cancelled before this claim`));
    } else {
      runner.run(item);
    }
  }

  /** Heartbeat of the claims of running jobs: a refused renewal (taken over) aborts the handler; a cancel asked is heard. */
  renew(items: readonly HeldDelivery[]): void {
    const { link, leaseMs, events, settlement } = this.#host;
    for (const item of items) {
      const sentAt = Date.now();
      link.renew.add({ id: item.envelope.id, fence: item.fence, ttlMs: leaseMs }).then(
        (outcome) => {
          if (!outcome.ok) {
            if (!item.completed) {
              const error = new LeaseLostError("[jobs] the job's claim in the store was taken over or has ended; its handler is aborted");
              events.emit("job.lease-lost", { job: jobOf(item), error: serializeError(error) });
              abortHandler(item, error);
            }
            return;
          }
          if (sentAt > item.claimConfirmedAt) item.claimConfirmedAt = sentAt;
          if (outcome.cancelRequested && !item.cancelHeard && !item.completed) {
            item.cancelHeard = true;
            abortHandler(item, new JobCancelledError(`[jobs] job ${item.envelope.id} was cancelled`));
          }
        },
        // The local deadline (check) aborts the handler if no renewal gets through in time.
        (error: unknown) => settlement.report(error, item.envelope),
      );
    }
  }

  /**
   * The local deadline (docs/concepts/records.md, rule 2): a running job whose claim no renewal
   * confirmed for a lease, less a margin, is aborted, whatever became of the renewals (a store that
   * does not answer never rejects them): by then another worker may take the job over.
   */
  check(now: number): void {
    const { leaseMs, events } = this.#host;
    const deadline = leaseMs - Math.min(1_000, leaseMs / 10);
    for (const item of this.#host.running()) {
      if (item.fence === 0 || item.completed || item.controller?.signal.aborted === true) continue;
      if (now - item.claimConfirmedAt >= deadline) {
        const error = new LeaseLostError("[jobs] no renewal of the job's claim was confirmed within its lease; the handler is aborted");
        events.emit("job.lease-lost", { job: jobOf(item), error: serializeError(error) });
        abortHandler(item, error);
      }
    }
  }

  /**
   * A delivery that reached the worker after it stopped taking work (a fetch answered after
   * close() stopped its consumers): one the broker claimed as it handed it out (fused) is handed
   * back in its record as shutdown hands back the claimed jobs it holds (`waiting`, then released),
   * so the next worker does not wait out the claim. False when it holds no claim: release it.
   */
  handBackLate(delivery: Delivery): boolean {
    const claim = delivery.claim;
    if (claim?.outcome !== "claimed") return false;
    let envelope: Envelope;
    try {
      const codec = this.#host.codec;
      envelope =
        delivery.local === undefined || codec.active
          ? decodeEnvelope(codec.verify(delivery.body), Number.POSITIVE_INFINITY)
          : fromLocalEnvelope(delivery.local);
    } catch {
      return false;
    }
    // Receipt holds a fused claim only with a generation in the body: the same rule here.
    if (envelope.gen === undefined) return false;
    this.#host.settlement.handBack({ delivery, envelope, fence: claim.fence });
    return true;
  }

  /** `ctx.progress`: the value goes to the record under this worker's fence. */
  async progress(item: HeldDelivery, value: unknown): Promise<void> {
    const { link, maxResultBytes } = this.#host;
    assertJsonValue(value, "progress");
    const json = JSON.stringify(value);
    if (json.length * 3 > maxResultBytes && utf8Length(json) > maxResultBytes) {
      throw new PayloadTooLargeError(utf8Length(json), maxResultBytes, "progress");
    }
    if (item.fence === 0 || item.completed) throw new LeaseLostError("[jobs] progress after the job ended is not kept");
    if (!(await link.store.progress(item.envelope.id, item.fence, json))) {
      throw new LeaseLostError("[jobs] this worker no longer holds the job; its progress was not kept");
    }
  }
}
