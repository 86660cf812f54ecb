/**
 * Crash suspects (RELIABILITY.md R4-H8, d.5 Q2). A broker counts deliveries, not who crashed: when
 * a worker process dies, every delivery it held comes back with its count raised, the job that
 * killed it and the innocent jobs that merely ran or waited beside it alike. Counted naively, the
 * innocents reach `maxDeliveries` together with the poison and are dead-lettered as `crash-loop`.
 *
 * So a delivery whose `deliveryCount` is above 1 (a consumer died holding it, or lost its lease) is
 * a *suspect* and runs alone: the worker starts it only once nothing else runs, and starts nothing
 * else until it has settled. A crash while a suspect runs then kills only that suspect's run, and
 * an innocent job's count stops climbing once it has itself run alone: only the job that really
 * kills its process keeps crashing and reaches the dead-letter rule. Deliveries merely buffered
 * (prefetched) at a crash still come back counted; they too then run alone.
 *
 * The cost: redeliveries that are not crashes (a lease lost in a stall or a partition) are
 * serialised as well, one at a time per worker, which only slows the rare redelivered job.
 */
import type { Held } from "./held.js";

/** Delivered before without being settled: a consumer died (or lost the lease) while holding it. */
export function isSuspect(item: Held): boolean {
  return item.delivery.deliveryCount > 1;
}

/**
 * Which suspect of a level's buffer runs next (alone): the highest `deliveryCount` first. Jobs
 * buffered beside a crashing one come back counted too, so a count says how close a job is to the
 * limit, not whether it crashes: the job one crash from the limit runs before a crash can take it
 * there, and one with a lower count can afford the wait. Ties are jobs that were handed out
 * together, typically all the jobs in flight at a crash; brokers hand such a group out again in an
 * order of their own (kept, reversed, …), and any rule based on that order can put the same crasher
 * ahead of the same innocent at every crash until both reach the limit. Ties are broken by a hash
 * of the job id and the count instead: stable for one delivery, drawn afresh at each redelivery,
 * whatever order the broker chose.
 */
export function pickSuspect(buffer: readonly Held[]): number {
  let best = -1;
  let count = 1;
  let rank = 0;
  for (let i = 0; i < buffer.length; i++) {
    const item = buffer[i] as Held;
    const n = item.delivery.deliveryCount;
    if (n <= 1 || n < count) continue;
    const r = tieRank(item.envelope.id, n);
    if (n > count || r < rank) {
      best = i;
      count = n;
      rank = r;
    }
  }
  return best;
}

/** FNV-1a of the id and the count: a rank that changes from one delivery of a job to the next. */
function tieRank(id: string, count: number): number {
  let h = 0x811c9dc5 ^ count;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * The level whose head starts next, or -1 when nothing is buffered: the highest level first,
 * unless the head of a level (its oldest job) was buffered at or before `agedBefore`; then the
 * oldest such head goes first.
 */
export function nextLevel(buffers: readonly (readonly Held[])[], agedBefore: number): number {
  let from = -1;
  let oldest = agedBefore;
  for (let level = 0; level <= 4; level++) {
    const head = buffers[level]?.[0];
    if (head !== undefined && head.bufferedAt <= oldest) {
      from = level;
      oldest = head.bufferedAt;
    }
  }
  for (let level = 4; from < 0 && level >= 0; level--) if ((buffers[level]?.length ?? 0) > 0) from = level;
  return from;
}

/**
 * A suspect is chosen one event-loop turn after the worker could start one, so that the rest of a
 * batch the broker is handing out (a group redelivered after a crash) is in the buffer to choose
 * from, not only its first delivery.
 */
export class SuspectTurn {
  #state: "idle" | "waiting" | "ready" = "idle";
  readonly #wake: () => void;
  constructor(wake: () => void) {
    this.#wake = wake;
  }
  /** True once a turn has passed since the first call; the next call after that waits a turn again. */
  ready(): boolean {
    if (this.#state === "ready") {
      this.#state = "idle";
      return true;
    }
    if (this.#state === "idle") {
      this.#state = "waiting";
      setImmediate(() => {
        this.#state = "ready";
        this.#wake();
      });
    }
    return false;
  }
}
