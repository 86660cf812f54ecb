import { BrokerClosedError, type DeadLetterRecord, type Delivery, type JobsError, LeaseLostError, type OutgoingMessage } from "@jobs/core";
import type { Msg } from "@nats-io/transport-node";
import type { Puller } from "./puller.js";

/** The acknowledgement that removes a message. */
export const ACK: Uint8Array = new TextEncoder().encode("+ACK");
const WPI: Uint8Array = new TextEncoder().encode("+WPI");
/** Settling this close to the server's lease end is refused: the server may have redelivered already. */
const LEASE_MARGIN_MS = 20;

/** What a delivery needs from its broker. */
export interface DeliveryHost {
  readonly closed: boolean;
  /** Publishes without waiting (acks, naks, heartbeats). */
  publishRaw(subject: string, data: string | Uint8Array): void;
  /** Resolves once the server has received what is published right after the call (in the same synchronous run). */
  confirm(): Promise<void>;
  /** Publishes to a queue's ready or delayed subject, awaiting the PubAck. */
  send(queue: string, body: string | Uint8Array, delayMs: number, msgId: string | undefined): Promise<boolean>;
  /** Stores a dead letter, awaiting the PubAck. */
  bury(queue: string, record: DeadLetterRecord, msgId: string): Promise<boolean>;
  /** The delivery ended. */
  forget(delivery: NatsDelivery): void;
}

/** Dot positions of the ack subject being parsed (one buffer for all: parsing is synchronous). */
const dots = new Int32Array(16);

/**
 * Token `fromEnd` of the ack subject, counted from its end (1 = last): 5 = times delivered, 4 =
 * stream sequence in `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<time>.<pending>`; newer
 * servers add a domain and an account hash after `ACK` and a random token at the end (one more).
 */
function ackToken(reply: string, fromEnd: 4 | 5): string {
  // Hot path (once per delivery): the dot positions by indexOf (faster than a charCodeAt loop), no split.
  let count = 0;
  for (let i = reply.indexOf("."); i >= 0; i = reply.indexOf(".", i + 1)) {
    if (count === dots.length) return "";
    dots[count++] = i;
  }
  // 9 tokens (8 dots): the v1 form; otherwise the newer form has one token more at the end.
  const index = count + 1 - fromEnd - (count === 8 && reply.startsWith("$JS.ACK.") ? 0 : 1);
  if (index < 1 || index > count) return "";
  return reply.slice((dots[index - 1] as number) + 1, index === count ? reply.length : dots[index]);
}

/** Stream sequence of a delivery, from its ack subject. */
export function sequenceOf(reply: string): string {
  return ackToken(reply, 4);
}

/**
 * The unsettled deliveries of a broker (close() hands them back): an intrusive list, so holding
 * one costs two field writes instead of a Set entry (a Set's churn reallocates its table), and an
 * index by stream sequence, so a second copy of a held message is recognised whatever its delivery
 * count (some nats-server versions, 2.9 among them, can send a redelivered message again with a
 * count of 1: nats-io/nats-server#5305).
 */
export class HeldDeliveries {
  #head: NatsDelivery | undefined;
  readonly #bySeq = new Map<string, NatsDelivery>();

  add(delivery: NatsDelivery): void {
    delivery.next = this.#head;
    if (this.#head !== undefined) this.#head.prev = delivery;
    this.#head = delivery;
    this.#bySeq.set(delivery.seq, delivery);
  }

  delete(delivery: NatsDelivery): void {
    const { prev, next } = delivery;
    if (prev !== undefined) prev.next = next;
    else if (this.#head === delivery) this.#head = next;
    else return;
    if (next !== undefined) next.prev = prev;
    delivery.prev = undefined;
    delivery.next = undefined;
    if (this.#bySeq.get(delivery.seq) === delivery) this.#bySeq.delete(delivery.seq);
  }

  /** The unsettled delivery of stream sequence `seq`, if this broker holds one. */
  find(seq: string): NatsDelivery | undefined {
    return this.#bySeq.get(seq);
  }

  /** Empties the list and returns what it held. */
  drain(): NatsDelivery[] {
    const all: NatsDelivery[] = [];
    for (let d = this.#head; d !== undefined; d = d.next) all.push(d);
    for (const d of all) {
      d.prev = undefined;
      d.next = undefined;
    }
    this.#head = undefined;
    this.#bySeq.clear();
    return all;
  }
}

/** One delivery of a ready message, leased until the server's AckWait ends (kept longer by heartbeats when asked). */
export class NatsDelivery implements Delivery {
  readonly body: string;
  /** Neighbours in the broker's HeldDeliveries list. */
  prev: NatsDelivery | undefined = undefined;
  next: NatsDelivery | undefined = undefined;
  readonly deliveryCount: number;
  /** Ack subject of the server's latest delivery of this message (a redelivery absorbed by `renew` replaces it). */
  reply: string;
  #seq: string | undefined;
  #expiresAt: number;
  #deadline: number;
  #settled = false;
  /** A heartbeat timer is armed. */
  #keeping = false;
  /** Bumped by `renew`: a heartbeat confirmation that fails after a renewal does not shorten the renewed lease. */
  #generation = 0;

  constructor(
    private readonly broker: DeliveryHost,
    private readonly puller: Puller,
    private readonly queue: string,
    msg: Msg,
    private readonly ackWaitMs: number,
    leaseMs: number,
  ) {
    this.reply = msg.reply as string;
    this.body = msg.string();
    this.deliveryCount = Number(ackToken(this.reply, 5));
    const now = performance.now();
    this.#expiresAt = now + ackWaitMs;
    this.#deadline = now + leaseMs;
    if (leaseMs > ackWaitMs) this.#keepAlive();
  }

  /** Stream sequence of the message. */
  get seq(): string {
    this.#seq ??= sequenceOf(this.reply);
    return this.#seq;
  }

  /**
   * The server redelivered this message (its AckWait ran out, e.g. while a partition kept our
   * acks and heartbeats from it) to this same consumer while we still hold it: the held delivery
   * stays the only one (the handler must not run twice in one process), with the new delivery's
   * ack subject and the lease the server restarted with it.
   */
  renew(msg: Msg): void {
    this.reply = msg.reply as string;
    this.#generation++;
    this.#expiresAt = performance.now() + this.ackWaitMs;
    if (this.#deadline > this.#expiresAt) this.#keepAlive();
  }

  /** Ends the delivery locally; false when it had already ended. */
  release(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    this.broker.forget(this);
    this.puller.release();
    return true;
  }

  #begin(): JobsError | undefined {
    if (this.broker.closed) return new BrokerClosedError("[jobs] [nats] broker is closed; the delivery went back to its queue");
    if (this.#settled) return new LeaseLostError("[jobs] [nats] the delivery was already settled");
    const lost = performance.now() >= this.#expiresAt - LEASE_MARGIN_MS;
    this.release();
    return lost ? new LeaseLostError() : undefined;
  }

  /** Sends working() while the lease this consumer asked for is longer than the server's AckWait. */
  #keepAlive(): void {
    if (this.#keeping) return;
    this.#keeping = true;
    const timer = setTimeout(() => {
      this.#keeping = false;
      if (this.#settled || this.broker.closed) return;
      const now = performance.now();
      if (now >= this.#expiresAt - LEASE_MARGIN_MS || now >= this.#deadline) return;
      // A failure is the connection's: the lease falls back, and the next settle is refused.
      this.#touch(now).catch(() => {});
      if (this.#deadline > this.#expiresAt) this.#keepAlive();
    }, this.ackWaitMs / 2);
    timer.unref();
  }

  /**
   * Sends a heartbeat, which restarts the AckWait. Unconfirmed (the connection dropped), the server
   * may never have seen it, so the lease falls back to what it was: otherwise a later ack would pass
   * the local check after the server redelivered the message elsewhere, and ack the other
   * consumer's delivery (acks name the stream sequence).
   */
  #touch(now: number): Promise<void> {
    const confirmed = this.broker.confirm();
    const before = this.#expiresAt;
    const generation = this.#generation;
    this.broker.publishRaw(this.reply, WPI);
    this.#expiresAt = now + this.ackWaitMs;
    return confirmed.catch((error: unknown) => {
      if (generation === this.#generation) this.#expiresAt = Math.min(this.#expiresAt, before);
      throw error;
    });
  }

  #ackAfter(sent: Promise<unknown>): Promise<void> {
    return sent.then(() => {
      const confirmed = this.broker.confirm();
      this.broker.publishRaw(this.reply, ACK);
      return confirmed;
    });
  }

  ack(): Promise<void> {
    const error = this.#begin();
    if (error !== undefined) return Promise.reject(error);
    const confirmed = this.broker.confirm();
    this.broker.publishRaw(this.reply, ACK);
    return confirmed;
  }

  retry(next: OutgoingMessage): Promise<void> {
    const error = this.#begin();
    if (error !== undefined) return Promise.reject(error);
    // Publish the next attempt first, then ack: a crash in between duplicates, never loses. The id
    // is this message's sequence, so a second try after a crash stores it once.
    return this.#ackAfter(this.broker.send(this.queue, next.body, next.delayMs, `${this.queue}#${sequenceOf(this.reply)}`));
  }

  defer(delayMs: number): Promise<void> {
    const error = this.#begin();
    if (error !== undefined) return Promise.reject(error);
    // A new message with the same body: the delivery count starts again at 1.
    return this.#ackAfter(this.broker.send(this.queue, this.body, delayMs, `${this.queue}#${sequenceOf(this.reply)}`));
  }

  deadLetter(record: DeadLetterRecord): Promise<void> {
    const error = this.#begin();
    if (error !== undefined) return Promise.reject(error);
    return this.#ackAfter(this.broker.bury(this.queue, record, `${this.queue}!${sequenceOf(this.reply)}`));
  }

  extendLease(ms: number): Promise<void> {
    if (this.broker.closed) return Promise.reject(new BrokerClosedError());
    const now = performance.now();
    if (this.#settled || now >= this.#expiresAt - LEASE_MARGIN_MS) return Promise.reject(new LeaseLostError());
    this.#deadline = Math.max(this.#deadline, now + ms);
    const confirmed = this.#touch(now);
    if (this.#deadline > this.#expiresAt) this.#keepAlive();
    return confirmed;
  }
}
