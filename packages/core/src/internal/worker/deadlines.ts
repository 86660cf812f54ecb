/**
 * Handler timeouts. One timer for all running jobs, armed for the earliest deadline, instead of a
 * setTimeout and clearTimeout per job: most jobs end long before their timeout, so it rarely fires.
 * A job that timed out while its handler still runs (overdue) keeps a second deadline, its timeout
 * plus the worker's `overdueAfter`, at which it is reported once if the handler still has not ended.
 */
import { clock } from "../../clock.js";
import { JobTimeoutError } from "../../errors.js";
import { abortHandler, type HeldDelivery } from "./held-delivery.js";

/** What the deadline timer needs from the worker. */
export interface DeadlineHost {
  /** The running jobs (deleting the current one while iterating must be safe). */
  running(): Iterable<HeldDelivery>;
  /** A job's handler ran past its deadline: its signal is aborted with `error`; settle it as failed. */
  timedOut(item: HeldDelivery, error: JobTimeoutError): void;
  /** `overdueAfter` in ms: how long after its timeout a handler still running is reported. */
  readonly overdueAfterMs: number;
  /** A timed-out handler still runs `overdueMs` after its timeout (`job.overdue`). */
  overdue(item: HeldDelivery, overdueMs: number): void;
}

export class Deadlines {
  readonly #host: DeadlineHost;
  #timer: NodeJS.Timeout | undefined;
  /** When the timer fires (clock.now() ms), Infinity while unarmed. */
  #at = Number.POSITIVE_INFINITY;
  readonly #fire = (): void => this.#check();

  constructor(host: DeadlineHost) {
    this.#host = host;
  }

  /** Sets the deadline of a handler that has just returned a promise (started at `item.startedAt`). */
  watch(item: HeldDelivery, timeoutMs: number): void {
    const deadline = item.startedAt + timeoutMs;
    item.deadline = deadline;
    if (deadline < this.#at) this.#arm(deadline);
  }

  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#at = Number.POSITIVE_INFINITY;
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#at = at;
    this.#timer = setTimeout(this.#fire, Math.max(0, at - clock.now()));
  }

  #check(): void {
    this.#timer = undefined;
    this.#at = Number.POSITIVE_INFINITY;
    const now = clock.now();
    let next = Number.POSITIVE_INFINITY;
    const host = this.#host;
    for (const item of host.running()) {
      if (item.completed && !item.overdue) continue;
      if (item.deadline > now) {
        if (item.deadline < next) next = item.deadline;
      } else if (item.overdue) {
        item.deadline = Number.POSITIVE_INFINITY;
        host.overdue(item, now - item.startedAt - item.envelope.timeout);
      } else {
        const error = new JobTimeoutError(item.envelope.timeout);
        abortHandler(item, error);
        // Its second deadline, should the handler go on (the host marks it overdue and keeps it).
        item.deadline += host.overdueAfterMs;
        host.timedOut(item, error);
        if (item.overdue && item.deadline < next) next = item.deadline;
      }
    }
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next);
  }
}
