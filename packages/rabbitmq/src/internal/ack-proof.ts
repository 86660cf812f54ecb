/**
 * Acks on a consumer's channel and their proof: an ack resolves only once RabbitMQ has provably
 * processed it, so that an ack that resolved is never followed by a redelivery.
 */
import { LeaseLostError } from "@jobs/core/adapter";
import type { Channel, ConsumeMessage } from "amqplib";

/**
 * How long acks wait for a delivery to prove them before a `basic.qos` round trip does. With a
 * backlog the next delivery comes sooner; a queue that ran dry pays this once per burst.
 */
const PROOF_FALLBACK_MS = 5;

/** Acks sent in one event-loop turn: resolved together once RabbitMQ has processed the last of them. */
export interface Proof {
  /** Index (in `AckChannel.sent`) of its last settlement. */
  upTo: number;
  /** When its first ack was sent (`performance.now()`). */
  readonly at: number;
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/** What the proofs track of one consumer channel (the consumer's `Slot` adds its deliveries). */
export interface AckChannel {
  readonly channel: Channel;
  dead: boolean;
  /** Its consumer's prefetch: RabbitMQ never has more unsettled deliveries out on it. */
  readonly prefetch: number;
  /** Settlements (ack, nack, reject) sent on the channel. */
  sent: number;
  /** Deliveries received on the channel. */
  received: number;
  /** Settlements RabbitMQ is known to have processed. */
  proven: number;
  /** Acks waiting for proof, oldest first. */
  readonly waiting: Proof[];
  /** The proof of the current event-loop turn, still taking acks. */
  open: Proof | undefined;
  /** A `basic.qos` proof is in flight. */
  qos: boolean;
  timer: NodeJS.Timeout | undefined;
  /** The broker is closing it: its proofs wait for the outcome of the close. */
  closing: boolean;
  /** Delivery tags received on the channel and not yet settled (pending acks included). */
  readonly unsettled: Set<number>;
  /** Acks of this event-loop turn, not yet written: sent together at its end (see `flushAcks`). */
  acks: ConsumeMessage[];
  /** `sent` when acks were last written. */
  flushed: number;
}

/**
 * Resolves once RabbitMQ has processed every settlement sent on the channel so far, so that an ack
 * that resolved is never followed by a redelivery. AMQP acks have no reply; two things prove them:
 *
 * - A delivery. RabbitMQ never has more than `prefetch` unsettled deliveries out to a consumer, so
 *   sending delivery number d means it had processed at least d − prefetch settlements (in channel
 *   order). With a backlog, every ack is proven by a later delivery at no cost.
 * - A `basic.qos` that changes nothing, answered after every method sent before it, when no
 *   delivery proved the acks within `PROOF_FALLBACK_MS` (a queue that ran dry, a retired channel).
 *
 * Acks of one event-loop turn share one promise.
 */
export function proof(slot: AckChannel): Promise<void> {
  let group = slot.open;
  if (group === undefined) {
    let resolve!: () => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    group = { upTo: slot.sent, at: performance.now(), promise, resolve, reject };
    slot.open = group;
    slot.waiting.push(group);
    // Sealed once the turn's microtasks have run (a nextTick queued now runs after them).
    process.nextTick(seal, slot, group);
  }
  group.upTo = slot.sent;
  return group.promise;
}

function seal(slot: AckChannel, group: Proof): void {
  if (slot.open === group) slot.open = undefined;
  armFallback(slot);
}

/**
 * Resolves the proofs of every settlement up to `slot.proven`. The fallback timer is left to run
 * out (it does nothing then): arming and clearing one per turn cost more than the proof itself.
 */
function flush(slot: AckChannel): void {
  const waiting = slot.waiting;
  while (waiting.length > 0 && (waiting[0] as Proof).upTo <= slot.proven) {
    const group = waiting.shift() as Proof;
    if (slot.open === group) slot.open = undefined;
    group.resolve();
  }
}

/** One timer per channel at most: it fires `PROOF_FALLBACK_MS` after the oldest unproven ack, or again later. */
function armFallback(slot: AckChannel): void {
  if (slot.waiting.length === 0 || slot.timer !== undefined || slot.qos || slot.dead) return;
  slot.timer = setTimeout(fallback, PROOF_FALLBACK_MS, slot);
}

function fallback(slot: AckChannel): void {
  if (slot.waiting.length === 0 || slot.qos || slot.dead) {
    slot.timer = undefined;
    return;
  }
  const wait = (slot.waiting[0] as Proof).at + PROOF_FALLBACK_MS - performance.now();
  if (wait >= 1) {
    slot.timer = setTimeout(fallback, wait, slot);
    return;
  }
  // One more poll of the socket first: a proving delivery may already be there.
  setImmediate(() => {
    slot.timer = undefined;
    if (slot.waiting.length > 0 && !slot.qos && !slot.dead) sendQos(slot);
  });
}

function sendQos(slot: AckChannel): void {
  flushAcks(slot);
  slot.qos = true;
  const upTo = slot.sent;
  slot.channel.prefetch(slot.prefetch).then(
    () => {
      slot.qos = false;
      if (upTo > slot.proven) slot.proven = upTo;
      flush(slot);
      armFallback(slot);
    },
    () => {
      slot.qos = false;
      if (!slot.closing) failProofs(slot);
    },
  );
}

/** The channel closed: nothing more can be proven (the broker requeues what it had not processed). */
export function failProofs(slot: AckChannel): void {
  if (slot.timer !== undefined) clearTimeout(slot.timer);
  slot.timer = undefined;
  slot.open = undefined;
  for (const group of slot.waiting.splice(0)) {
    group.reject(new LeaseLostError("[jobs] [rabbitmq] the channel closed before the ack was confirmed; the message will be redelivered"));
  }
}

/** A clean close (close-ok) proves every settlement sent before it: RabbitMQ answers it after processing them. */
export function closeProofs(slot: AckChannel, clean: boolean): void {
  slot.closing = false;
  if (!clean) {
    failProofs(slot);
    return;
  }
  slot.proven = slot.sent;
  flush(slot);
}

/** A delivery arrived: it proves settlements up to `received − prefetch`. */
export function delivered(slot: AckChannel): void {
  slot.received++;
  const known = Math.min(slot.received - slot.prefetch, slot.sent);
  if (known > slot.proven) {
    slot.proven = known;
    if (slot.waiting.length > 0) flush(slot);
  }
}

/**
 * Acks a delivery at the end of the event-loop turn. It counts as sent at once: nothing else is
 * written on the channel before it (`flushAcks` runs first), so batches stay in count order.
 */
export function ack(slot: AckChannel, msg: ConsumeMessage): void {
  if (slot.acks.length === 0) process.nextTick(flushAcks, slot);
  slot.acks.push(msg);
  slot.sent++;
}

/**
 * Writes the turn's acks. Those below every other unsettled delivery of the channel go as one
 * `basic.ack` with `multiple` (it settles exactly them: everything before is settled already),
 * the rest one by one. One frame instead of one per job saves RabbitMQ and this process CPU per job.
 * Throws nothing: on a closed channel the acks are lost, and their proofs fail with the channel.
 */
export function flushAcks(slot: AckChannel): void {
  const acks = slot.acks;
  if (acks.length === 0) return;
  slot.acks = [];
  // The batch leaves in another order than it was counted (the multiple ack last): a proof must
  // cover it whole, so every proof ending inside it ends at its end. RabbitMQ processes frames in
  // wire order, so a count that reaches the batch's end covers every frame in it.
  const end = slot.sent;
  const waiting = slot.waiting;
  for (let i = waiting.length - 1; i >= 0 && (waiting[i] as Proof).upTo > slot.flushed; i--) (waiting[i] as Proof).upTo = end;
  slot.flushed = end;
  if (slot.dead) return;
  const unsettled = slot.unsettled;
  for (const msg of acks) unsettled.delete(msg.fields.deliveryTag);
  let floor = Number.POSITIVE_INFINITY;
  for (const tag of unsettled) if (tag < floor) floor = tag;
  try {
    let last: ConsumeMessage | undefined;
    for (const msg of acks) {
      const tag = msg.fields.deliveryTag;
      if (tag < floor) {
        if (last === undefined || tag > last.fields.deliveryTag) last = msg;
      } else slot.channel.ack(msg);
    }
    if (last !== undefined) slot.channel.ack(last, true);
  } catch {
    // The channel closed: the broker requeues what was not acked; the close fails the proofs.
  }
}

/** Back to the queue. `reject` (not `nack`): RabbitMQ 4.3+ counts it as a failed delivery against `x-delivery-limit`. */
export function requeue(slot: AckChannel, msg: ConsumeMessage, failed: boolean): void {
  flushAcks(slot);
  slot.unsettled.delete(msg.fields.deliveryTag);
  if (failed) slot.channel.reject(msg, true);
  else slot.channel.nack(msg, false, true);
  slot.sent++;
}
