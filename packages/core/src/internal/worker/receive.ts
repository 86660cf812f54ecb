/**
 * Receipt: what the worker checks on a delivery before it holds it. An undecodable body, a crash
 * loop and an unknown job are dead-lettered, a job not due yet is deferred; any other delivery
 * becomes a `HeldDelivery`.
 */
import type { DeadLetterReason, Delivery } from "../../broker.js";
import type { Codec } from "../../codec.js";
import { decodeEnvelope, type Envelope, fromLocalEnvelope } from "../../envelope.js";
import { JobsError, UnknownJobError } from "../../errors.js";
import { PRIORITIES, type PriorityLevel } from "../../priority.js";
import type { HeldDelivery, Registered } from "./held-delivery.js";
import type { Settlement } from "./settlement.js";

/** What receipt needs from the worker. */
export interface ReceiveHost {
  /** The worker's payload limit, in bytes. */
  readonly maxBytes: number;
  /** `maxDeliveries`: a delivery counted above it is a crash loop. */
  readonly maxDeliveries: number;
  /** The handlers, by job name. */
  readonly handlers: ReadonlyMap<string, Registered>;
  readonly settlement: Pick<Settlement, "deadLetter" | "defer">;
  /** Checks signatures and decrypts payloads (`IDENTITY_CODEC` when neither is configured). */
  readonly codec: Codec;
  /** Dead-letters a decoded job given up here (crash loop, unknown job): with a store, through its record. */
  deadLetterJob(delivery: Delivery, envelope: Envelope, reason: DeadLetterReason, error: unknown): void;
}

/** The delivery as the worker holds it, or undefined when it was settled here. */
export function receive(delivery: Delivery, host: ReceiveHost): HeldDelivery | undefined {
  const { settlement, maxBytes } = host;
  let envelope: Envelope;
  const codec = host.codec;
  if (codec.active) {
    const opened = open(delivery, host);
    if (opened === undefined) return undefined;
    envelope = opened;
  } else {
    try {
      // The pre-split form skips parsing the body, but not the size limit: near it, decode.
      const local = delivery.local;
      envelope =
        local === undefined || delivery.body.length * 3 > maxBytes ? decodeEnvelope(delivery.body, maxBytes) : fromLocalEnvelope(local);
    } catch (error) {
      settlement.deadLetter(delivery, undefined, "undecodable", error);
      return undefined;
    }
  }
  const prior = envelope.priorDeliveries;
  const count = prior === undefined ? delivery.deliveryCount : delivery.deliveryCount + prior;
  if (count > host.maxDeliveries) {
    const error = new JobsError(
      "non-retryable",
      `[jobs] delivered ${count} times without being settled (its worker keeps dying or losing the lease)`,
    );
    host.deadLetterJob(delivery, envelope, "crash-loop", error);
    return undefined;
  }
  const now = Date.now();
  if (envelope.runAt > now) {
    settlement.defer(delivery, envelope, envelope.runAt - now);
    return undefined;
  }
  const registered = host.handlers.get(envelope.name);
  if (registered === undefined) {
    host.deadLetterJob(delivery, envelope, "unknown-job", new UnknownJobError(envelope.name));
    return undefined;
  }
  return {
    delivery,
    envelope,
    registered,
    level: PRIORITIES.indexOf(envelope.priority) as PriorityLevel,
    count,
    heartbeatSentAt: now,
    leaseConfirmedAt: now,
    leaseLost: false,
    controller: undefined,
    abortedByShutdown: false,
    completed: false,
    overdue: false,
    pendingTimeout: undefined,
    job: undefined,
    startedAt: 0,
    bufferedAt: now,
    deadline: Number.POSITIVE_INFINITY,
    // Claimed by the broker as it handed the delivery out (fused with the store): held from now.
    fence: delivery.claim?.outcome === "claimed" && envelope.gen !== undefined ? delivery.claim.fence : 0,
    claimConfirmedAt: now,
    cancelHeard: false,
    resultJson: undefined,
    span: undefined,
    prev: undefined,
    next: undefined,
  };
}

/**
 * Receipt through the codec: the body's signature is checked before anything in it is trusted
 * (a missing or bad one dead-letters it with reason `signature`, its body kept as received), then
 * decoded, then its payload decrypted (a payload that does not decrypt is `undecodable`). The
 * size limit applies to the body as received. The pre-split local form is used only once the body
 * it came with verified.
 */
function open(delivery: Delivery, host: ReceiveHost): Envelope | undefined {
  const { codec, settlement, maxBytes } = host;
  let text: string;
  try {
    text = codec.verify(delivery.body);
  } catch (error) {
    settlement.deadLetter(delivery, undefined, "signature", error);
    return undefined;
  }
  try {
    // The pre-split form, made by core in this process with the very body just checked, skips the parse (not the size limit).
    const local = delivery.local;
    const envelope = local === undefined || delivery.body.length * 3 > maxBytes ? decodeEnvelope(text, maxBytes) : fromLocalEnvelope(local);
    const payload = codec.openPayload(envelope.payload, envelope.id, envelope.name);
    return payload === envelope.payload ? envelope : { ...envelope, payload };
  } catch (error) {
    settlement.deadLetter(delivery, undefined, "undecodable", error);
    return undefined;
  }
}
