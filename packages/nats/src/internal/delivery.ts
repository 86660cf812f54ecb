import { BrokerClosedError, type JobsError } from "@jobs/core";
import { clock, type DeadLetterRecord, type Delivery, LeaseLostError, type OutgoingMessage } from "@jobs/core/adapter";
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
 * Finds the dots of an ack subject (into `dots`) and returns the index of its `<delivered>` token,
 * which the stream sequence follows: `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<time>.<pending>`,
 * or on newer servers with a domain and an account hash after `ACK` and a random token at the end.
 * -1 when the subject has neither form. Token `i` ends at `dots[i]` and starts after `dots[i - 1]`.
 */
function deliveredIndex(reply: string): number {
  // Hot path (once per delivery): the dot positions by indexOf (faster than a charCodeAt loop), no split.
  let count = 0;
  for (let i = reply.indexOf("."); i >= 0; i = reply.indexOf(".", i + 1)) {
    if (count === dots.length) return -1;
    dots[count++] = i;
  }
  // 9 tokens (8 dots): the v1 form; otherwise the newer form has one token more at the end.
  const index = count - 4 - (count === 8 && reply.startsWith("$JS.ACK.") ? 0 : 1);
  return index >= 1 ? index : -1;
}

/** Token `index` of the subject whose dots `deliveredIndex` just found (never the last token). */
function tokenAt(reply: string, index: number): string {
  return reply.slice((dots[index - 1] as number) + 1, dots[index]);
}

/** Stream sequence of a delivery, from its ack subject ("" when unreadable). */
export function sequenceOf(reply: string): string {
  const index = deliveredIndex(reply);
  return index < 0 ? "" : tokenAt(reply, index + 1);
}

/** What `HeldDeliveries` links and indexes: a delivery with its stream sequence and three links. */
export interface Holdable<T> {
  readonly seq: string;
  /** Neighbours in the list. */
  prev: T | undefined;
  next: T | undefined;
  /** Next in the same bucket of the index. */
  chained: T | undefined;
}

const FIRST_BUCKETS = 64;

/**
 * The unsettled deliveries of a broker (close() hands them back): an intrusive list, and an index
 * by stream sequence, so that a second copy of a held message is recognised whatever its delivery
 * count (some nats-server versions, 2.9 among them, can send a redelivered message again with a
 * count of 1: nats-io/nats-server#5305).
 *
 * Neither is a `Map` or `Set`: with one insert and one delete per job, a hash table's rehashes
 * leave behind old tables still pointing at the deliveries they held, and a table that has reached
 * the old generation keeps those deliveries (and their bodies) alive through young collections,
 * so they are promoted (measured: about 6 MB promoted per 20,000 jobs with a `Map`, 40 KB without).
 * The index is a bucket array of chains through the deliveries themselves; it only grows, and the
 * array it replaces is cleared.
 */
export class HeldDeliveries<T extends Holdable<T> = NatsDelivery> {
  #head: T | undefined;
  #buckets: (T | undefined)[] = new Array<T | undefined>(FIRST_BUCKETS).fill(undefined);
  #size = 0;

  /** Deliveries held. */
  get size(): number {
    return this.#size;
  }

  add(delivery: T): void {
    delivery.prev = undefined;
    delivery.next = this.#head;
    if (this.#head !== undefined) this.#head.prev = delivery;
    this.#head = delivery;
    if (++this.#size > this.#buckets.length) this.#grow();
    else this.#index(this.#buckets, delivery);
  }

  delete(delivery: T): void {
    const { prev, next } = delivery;
    if (prev !== undefined) prev.next = next;
    else if (this.#head === delivery) this.#head = next;
    else return;
    if (next !== undefined) next.prev = prev;
    delivery.prev = undefined;
    delivery.next = undefined;
    this.#size--;
    const buckets = this.#buckets;
    const b = bucketOf(delivery.seq, buckets.length);
    let d = buckets[b];
    if (d === delivery) buckets[b] = delivery.chained;
    else {
      while (d !== undefined && d.chained !== delivery) d = d.chained;
      if (d !== undefined) d.chained = delivery.chained;
    }
    delivery.chained = undefined;
  }

  /** The unsettled delivery of stream sequence `seq`, if this broker holds one. */
  find(seq: string): T | undefined {
    if (seq === "") return undefined;
    for (let d = this.#buckets[bucketOf(seq, this.#buckets.length)]; d !== undefined; d = d.chained) if (d.seq === seq) return d;
    return undefined;
  }

  /** Empties the list and returns what it held. */
  drain(): T[] {
    const all: T[] = [];
    for (let d = this.#head; d !== undefined; d = d.next) all.push(d);
    for (const d of all) {
      d.prev = undefined;
      d.next = undefined;
      d.chained = undefined;
    }
    this.#head = undefined;
    this.#size = 0;
    this.#buckets.fill(undefined);
    return all;
  }

  #index(buckets: (T | undefined)[], delivery: T): void {
    // An unreadable ack subject has no sequence: such a delivery is listed, not indexed.
    if (delivery.seq === "") {
      delivery.chained = undefined;
      return;
    }
    const b = bucketOf(delivery.seq, buckets.length);
    delivery.chained = buckets[b];
    buckets[b] = delivery;
  }

  /** Twice the buckets, every held delivery indexed again; the old array is cleared (see above). */
  #grow(): void {
    const old = this.#buckets;
    const buckets = new Array<T | undefined>(old.length * 2).fill(undefined);
    for (let d = this.#head; d !== undefined; d = d.next) this.#index(buckets, d);
    this.#buckets = buckets;
    old.fill(undefined);
  }
}

/** Bucket of a stream sequence (a decimal string): its low bits, as sequences are consecutive; `length` is a power of two. */
function bucketOf(seq: string, length: number): number {
  // ToInt32 keeps the low 32 bits of sequences above 2^31 too, so the same string always lands in the same bucket.
  return Number(seq) & (length - 1);
}

/** One delivery of a ready message, leased until the server's AckWait ends (kept longer by heartbeats when asked). */
export class NatsDelivery implements Delivery {
  readonly body: string;
  /** Links in the broker's HeldDeliveries. */
  prev: NatsDelivery | undefined = undefined;
  next: NatsDelivery | undefined = undefined;
  chained: NatsDelivery | undefined = undefined;
  readonly deliveryCount: number;
  /** Stream sequence of the message ("" if the ack subject is unreadable). */
  readonly seq: string;
  /** Ack subject of the server's latest delivery of this message (a redelivery absorbed by `renew` replaces it). */
  reply: string;
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
    const reply = msg.reply as string;
    this.reply = reply;
    this.body = msg.string();
    const delivered = deliveredIndex(reply);
    this.deliveryCount = delivered < 0 ? 0 : Number(tokenAt(reply, delivered));
    this.seq = delivered < 0 ? "" : tokenAt(reply, delivered + 1);
    const now = clock.now();
    this.#expiresAt = now + ackWaitMs;
    this.#deadline = now + leaseMs;
    if (leaseMs > ackWaitMs) this.#keepAlive();
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
    this.#expiresAt = clock.now() + this.ackWaitMs;
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
    const lost = clock.now() >= this.#expiresAt - LEASE_MARGIN_MS;
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
      const now = clock.now();
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
    return this.#ackAfter(this.broker.send(this.queue, next.body, next.delayMs, `${this.queue}#${this.seq}`));
  }

  defer(delayMs: number): Promise<void> {
    const error = this.#begin();
    if (error !== undefined) return Promise.reject(error);
    // A new message with the same body: the delivery count starts again at 1.
    return this.#ackAfter(this.broker.send(this.queue, this.body, delayMs, `${this.queue}#${this.seq}`));
  }

  deadLetter(record: DeadLetterRecord): Promise<void> {
    const error = this.#begin();
    if (error !== undefined) return Promise.reject(error);
    return this.#ackAfter(this.broker.bury(this.queue, record, `${this.queue}!${this.seq}`));
  }

  extendLease(ms: number): Promise<void> {
    if (this.broker.closed) return Promise.reject(new BrokerClosedError());
    const now = clock.now();
    if (this.#settled || now >= this.#expiresAt - LEASE_MARGIN_MS) return Promise.reject(new LeaseLostError());
    this.#deadline = Math.max(this.#deadline, now + ms);
    const confirmed = this.#touch(now);
    if (this.#deadline > this.#expiresAt) this.#keepAlive();
    return confirmed;
  }
}
