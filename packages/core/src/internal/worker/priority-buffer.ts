/**
 * The deliveries a worker holds but has not started, one FIFO per priority level, with aging: a
 * steady stream of urgent jobs delays the others but never starves them (`priorityAging`).
 */
import type { HeldDelivery } from "./held-delivery.js";

/**
 * The level whose head starts next, or -1 when nothing is buffered: the highest level first,
 * unless the head of a level (its oldest job) was buffered at or before `agedBefore`; then the
 * oldest such head goes first.
 */
export function nextLevel(levels: readonly (readonly Pick<HeldDelivery, "bufferedAt">[])[], agedBefore: number): number {
  let from = -1;
  let oldest = agedBefore;
  for (let level = 0; level <= 4; level++) {
    const head = levels[level]?.[0];
    if (head !== undefined && head.bufferedAt <= oldest) {
      from = level;
      oldest = head.bufferedAt;
    }
  }
  for (let level = 4; from < 0 && level >= 0; level--) if ((levels[level]?.length ?? 0) > 0) from = level;
  return from;
}

/** Buffered deliveries by priority level (0 lowest … 4 highest). */
export class PriorityBuffer {
  readonly #levels: HeldDelivery[][] = [[], [], [], [], []];
  readonly #agingMs: number;
  #size = 0;

  constructor(agingMs: number) {
    this.#agingMs = agingMs;
  }

  /** Deliveries buffered, all levels. */
  get size(): number {
    return this.#size;
  }

  push(item: HeldDelivery): void {
    (this.#levels[item.level] as HeldDelivery[]).push(item);
    this.#size++;
  }

  /** The `agedBefore` of `shift` for a pass over the buffer starting at `now` (Date.now() ms). */
  agedBefore(now: number): number {
    return now - this.#agingMs;
  }

  /** Removes and returns the delivery to start next (`nextLevel`), or undefined when empty. */
  shift(agedBefore: number): HeldDelivery | undefined {
    const item = this.#levels[nextLevel(this.#levels, agedBefore)]?.shift();
    if (item !== undefined) this.#size--;
    return item;
  }

  /** The delivery `pick` chooses in the highest level where it chooses one (it returns an index, or -1), left in place. */
  find(pick: (level: readonly HeldDelivery[]) => number): HeldDelivery | undefined {
    for (let level = 4; level >= 0; level--) {
      const buffer = this.#levels[level] as HeldDelivery[];
      const i = pick(buffer);
      if (i >= 0) return buffer[i];
    }
    return undefined;
  }

  /** Removes one delivery; false if it was not buffered. */
  remove(item: HeldDelivery): boolean {
    const buffer = this.#levels[item.level] as HeldDelivery[];
    const i = buffer.indexOf(item);
    if (i < 0) return false;
    buffer.splice(i, 1);
    this.#size--;
    return true;
  }

  /** Removes and returns the deliveries `test` accepts: lowest level first, each level from its tail. */
  removeWhere(test: (item: HeldDelivery) => boolean): HeldDelivery[] {
    const removed: HeldDelivery[] = [];
    for (const buffer of this.#levels) {
      for (let i = buffer.length - 1; i >= 0; i--) {
        const item = buffer[i] as HeldDelivery;
        if (!test(item)) continue;
        buffer.splice(i, 1);
        this.#size--;
        removed.push(item);
      }
    }
    return removed;
  }

  /** Empties the buffer; returns what it held, lowest level first, each level in order. */
  drain(): HeldDelivery[] {
    const all: HeldDelivery[] = [];
    for (const buffer of this.#levels) all.push(...buffer.splice(0));
    this.#size = 0;
    return all;
  }

  /** Every buffered delivery, lowest level first. */
  *[Symbol.iterator](): Generator<HeldDelivery> {
    for (const buffer of this.#levels) yield* buffer;
  }
}
