/**
 * Waiting for a job's outcome from the producer (`handle.result()`): one store subscription per
 * client when the store can notify, shared by every wait, with a read after subscribing so a job
 * that finished before the subscription is not missed; polling with backoff when it cannot.
 * Closing (the client's `close()`) ends the subscription and every wait at once.
 */
import type { Envelope } from "../../envelope.js";
import { BrokerClosedError, JobFailedError, JobNotFoundError, type JobsError, WaitTimeoutError } from "../../errors.js";
import type { JobStatus, JobStore, StoredJob } from "../../store.js";

const TERMINAL = new Set<JobStatus>(["succeeded", "dead", "cancelled", "discarded"]);

/** The outcome of a finished record: its result, or a `JobFailedError`. */
export function outcomeOf(job: StoredJob): unknown {
  if (job.status === "succeeded") return job.resultJson === undefined ? undefined : JSON.parse(job.resultJson);
  const error = job.errorJson === undefined ? undefined : (JSON.parse(job.errorJson) as Envelope["lastError"]);
  const status = job.status as "dead" | "cancelled" | "discarded";
  const why = error === undefined ? "" : `: ${error.message}`;
  throw new JobFailedError(`[jobs] job ${job.id} (${job.name}) ended ${status}${why}`, status, error);
}

export class ResultWaiter {
  readonly #store: JobStore;
  /** Every wait's wake-up, by job id: a notification for the id, or close(), wakes it to read again. */
  readonly #waiting = new Map<string, Set<() => void>>();
  #subscription: Promise<() => void> | undefined;
  /** Set by close(): what every wait then rejects with. */
  #closed: JobsError | undefined;

  constructor(store: JobStore) {
    this.#store = store;
  }

  /**
   * Resolves with the job's result once it succeeded; rejects with `JobFailedError`,
   * `JobNotFoundError` at once for an id with no record, `WaitTimeoutError` after `timeoutMs`, or
   * `BrokerClosedError` once the client is closed.
   */
  async wait(id: string, timeoutMs: number): Promise<unknown> {
    if (this.#closed !== undefined) throw this.#closed;
    const deadline = Date.now() + timeoutMs;
    const job =
      this.#store.capabilities.notify && this.#store.watch !== undefined
        ? await this.#notified(id, deadline)
        : await this.#polled(id, deadline);
    return outcomeOf(job);
  }

  /** Stops listening (the client is closed): pending and later waits reject with `BrokerClosedError`. */
  async close(): Promise<void> {
    this.#closed ??= new BrokerClosedError("[jobs] client is closed; it no longer waits for results");
    for (const set of this.#waiting.values()) for (const wake of set) wake();
    const sub = this.#subscription;
    this.#subscription = undefined;
    if (sub !== undefined) (await sub.catch(() => () => {}))();
  }

  async #finished(id: string): Promise<StoredJob | undefined> {
    const job = await this.#store.get(id);
    if (this.#closed !== undefined) throw this.#closed;
    if (job === undefined) throw new JobNotFoundError(id);
    return TERMINAL.has(job.status) ? job : undefined;
  }

  /**
   * A wake-up for `id`: `woken()` resolves once a notification of it (or close()) came since the
   * last `woken()` resolved, so a wake during a read is not lost; `off()` when done.
   */
  #listen(id: string): { woken(): Promise<void>; off(): void } {
    let resolve: () => void = () => {};
    const arm = (): Promise<void> =>
      new Promise<void>((r) => {
        resolve = r;
      });
    let next = arm();
    const listener = (): void => resolve();
    const set = this.#waiting.get(id) ?? new Set<() => void>();
    this.#waiting.set(id, set);
    set.add(listener);
    return {
      woken: () => {
        const current = next;
        return current.then(() => {
          if (next === current) next = arm();
        });
      },
      off: () => {
        set.delete(listener);
        if (set.size === 0) this.#waiting.delete(id);
      },
    };
  }

  async #notified(id: string, deadline: number): Promise<StoredJob> {
    this.#subscription ??= (this.#store.watch as NonNullable<JobStore["watch"]>)((jobId) => {
      const set = this.#waiting.get(jobId);
      if (set !== undefined) for (const wake of set) wake();
    });
    const listening = this.#listen(id);
    try {
      await this.#subscription;
      for (;;) {
        // Read after subscribing (and after every wake): a finish before the subscription is seen here.
        const job = await this.#finished(id);
        if (job !== undefined) return job;
        const left = deadline - Date.now();
        if (left <= 0) throw timeout(id);
        if ((await sleep(listening.woken(), left)) === "timeout") {
          const last = await this.#finished(id);
          if (last !== undefined) return last;
          throw timeout(id);
        }
      }
    } finally {
      listening.off();
    }
  }

  async #polled(id: string, deadline: number): Promise<StoredJob> {
    const listening = this.#listen(id);
    try {
      let interval = 20;
      for (;;) {
        const job = await this.#finished(id);
        if (job !== undefined) return job;
        const left = deadline - Date.now();
        if (left <= 0) throw timeout(id);
        await sleep(listening.woken(), Math.min(interval, left));
        interval = Math.min(interval * 2, 1_000);
      }
    } finally {
      listening.off();
    }
  }
}

/** Waits for `woken` or `ms`, whichever comes first. */
async function sleep(woken: Promise<void>, ms: number): Promise<"woken" | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  const won = await Promise.race([woken.then(() => "woken" as const), timedOut]);
  clearTimeout(timer);
  return won;
}

function timeout(id: string): WaitTimeoutError {
  return new WaitTimeoutError(`[jobs] job ${id} did not finish in time; it goes on (wait again, or cancel it)`);
}
