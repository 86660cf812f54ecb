/** The unsettled deliveries of a broker, listed and indexed by stream sequence. */

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
export class HeldDeliveries<T extends Holdable<T>> {
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
