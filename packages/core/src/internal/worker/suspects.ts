/**
 * Crash suspects: the rules (docs/reliability.md, R4-H8; the gate that applies them is suspect-gate.ts). A broker counts deliveries, not who crashed: when
 * a worker process dies, every delivery it held comes back with its count raised, the job that
 * killed it and the innocent jobs that merely ran or waited beside it alike. Counted naively, the
 * innocents reach `maxDeliveries` together with the poison and are dead-lettered as `crash-loop`.
 *
 * So a delivery whose count has reached `suspectThreshold(maxDeliveries)` (consumers died holding
 * it, or lost its lease, that many times less one) is a *suspect*, and a worker holds suspects by
 * two rules:
 *
 * 1. A suspect runs alone: the worker starts no other job while a suspect waits (the ones running
 *    finish), starts the suspect once nothing else runs or settles, and starts nothing else until it
 *    has settled.
 * 2. A worker holds one suspect at a time. Before it starts one, it releases the other suspects it
 *    has buffered (and any delivered until it starts) keeping their counts, each for
 *    `KEPT_COUNT_RELEASE_DELAY_MS`: the count is carried in the envelope (`priorDeliveries`), so the
 *    release neither raises nor resets it; and it pauses its consumers (`Subscription.pause`, where
 *    the adapter has it). It starts the suspect once those releases have reached the broker and no
 *    request for deliveries is on its way.
 *
 * A crash while a suspect runs then raises the count of that suspect and of first deliveries
 * buffered beside it (count 1, which can afford one), never of another suspect: an innocent job is
 * counted for a crash at most once before it runs alone, and alone it completes. Only the job that
 * really kills its process keeps crashing, its count never lowered, and reaches the dead-letter rule
 * after at most `maxDeliveries` runs. What is left: a suspect that arrives while jobs already run
 * waits in the buffer for them, and is counted if one of them is a job crashing on its first run;
 * and on brokers whose consumers cannot pause, a suspect delivered while another runs waits in the
 * buffer (releasing it then could be cut short by a crash, leaving the job twice in the queue)
 * and is counted if that one crashes.
 *
 * The cost: redeliveries that are not crashes (a lease lost in a stall or a partition) are
 * serialised as well, one at a time per worker, and a suspect that meets another waits a second per
 * meeting; first deliveries never pay anything.
 */
import type { Envelope } from "../../envelope.js";
import type { HeldDelivery } from "./held-delivery.js";

/**
 * The delivery count from which a delivery is a suspect: above half of `maxDeliveries`, and never
 * below 2. A kill -9, an OOM kill or a deploy that takes a worker down makes every job it held come
 * back counted; were all of those run one at a time, the whole backlog of a killed worker would wait
 * behind each other. Below the threshold a redelivered job runs beside others as usual (it can
 * afford a few more crashes); from it on, with the rest of its allowance at stake, it runs alone.
 * With the default `maxDeliveries` (10) that is from the 6th delivery; with 3, from the 2nd.
 */
export function suspectThreshold(maxDeliveries: number): number {
  return Math.max(2, Math.floor(maxDeliveries / 2) + 1);
}

/** Delivered at least `from` times without being settled: consumers died (or lost the lease) while holding it. */
export function isSuspect(item: HeldDelivery, from: number): boolean {
  return item.count >= from;
}

/** The envelope a suspect is released with (keeping its count): as received, carrying its count but this delivery's. */
export function withCarriedCount(item: HeldDelivery, received: Envelope): Envelope {
  return { ...received, priorDeliveries: item.count - 1 };
}

/** The envelope without a carried count: a retry or a dead letter starts counting afresh. */
export function withoutCarriedCount(envelope: Envelope): Envelope {
  if (envelope.priorDeliveries === undefined) return envelope;
  const { priorDeliveries: _, ...rest } = envelope;
  return rest;
}

/** How long a suspect released by a worker that holds another stays away (at most a hop a second per suspect, whatever the job's length). */
export const KEPT_COUNT_RELEASE_DELAY_MS = 1_000;

/**
 * Which suspect of a level's buffer runs next (alone): the highest count first. Jobs
 * buffered beside a crashing one come back counted too, so a count says how close a job is to the
 * limit, not whether it crashes: the job one crash from the limit runs before a crash can take it
 * there, and one with a lower count can afford the wait. Ties are jobs that were handed out
 * together, typically all the jobs in flight at a crash; brokers hand such a group out again in an
 * order of their own (kept, reversed, …), and any rule based on that order can put the same crasher
 * ahead of the same innocent at every crash until both reach the limit. Ties are broken by a hash
 * of the job id and the count instead: stable for one delivery, drawn afresh at each redelivery,
 * whatever order the broker chose.
 */
export function pickSuspect(buffer: readonly HeldDelivery[], from: number): number {
  let best = -1;
  let count = from - 1;
  let rank = 0;
  for (let i = 0; i < buffer.length; i++) {
    const item = buffer[i] as HeldDelivery;
    const n = item.count;
    if (n < from || n < count) continue;
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
