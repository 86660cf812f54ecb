/**
 * Waiting for a job's outcome from the producer (`handle.result()`): one store subscription per
 * client when the store can notify, shared by every wait, with a read after subscribing so a job
 * that finished before the subscription is not missed; polling with backoff when it cannot.
 */
import type { Envelope } from "../../envelope.js";
import { JobFailedError, WaitTimeoutError } from "../../errors.js";
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
  readonly #waiting = new Map<string, Set<() => void>>();
  #subscription: Promise<() => void> | undefined;

  constructor(store: JobStore) {
    this.#store = store;
  }

  /** Resolves with the job's result once it succeeded; rejects with `JobFailedError`, or `WaitTimeoutError` after `timeoutMs`. */
  async wait(id: string, timeoutMs: number): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    const job =
      this.#store.capabilities.notify && this.#store.watch !== undefined
        ? await this.#notified(id, deadline)
        : await this.#polled(id, deadline);
    return outcomeOf(job);
  }

  /** Stops listening (the client is done with the store). */
  async close(): Promise<void> {
    const sub = this.#subscription;
    this.#subscription = undefined;
    if (sub !== undefined) (await sub.catch(() => () => {}))();
  }

  async #finished(id: string): Promise<StoredJob | undefined> {
    const job = await this.#store.get(id);
    if (job === undefined) throw new JobFailedError(`[jobs] job ${id} has no record (unknown id, or pruned)`, "discarded");
    return TERMINAL.has(job.status) ? job : undefined;
  }

  async #notified(id: string, deadline: number): Promise<StoredJob> {
    this.#subscription ??= (this.#store.watch as NonNullable<JobStore["watch"]>)((jobId) => {
      const set = this.#waiting.get(jobId);
      if (set !== undefined) for (const wake of set) wake();
    });
    let wake: () => void = () => {};
    let woken = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const listener = (): void => wake();
    const set = this.#waiting.get(id) ?? new Set<() => void>();
    this.#waiting.set(id, set);
    set.add(listener);
    try {
      await this.#subscription;
      for (;;) {
        // Read after subscribing (and after every wake): a finish before the subscription is seen here.
        const job = await this.#finished(id);
        if (job !== undefined) return job;
        const left = deadline - Date.now();
        if (left <= 0) throw timeout(id);
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => resolve("timeout"), left);
        });
        const won = await Promise.race([woken, timedOut]);
        clearTimeout(timer);
        if (won === "timeout") {
          const last = await this.#finished(id);
          if (last !== undefined) return last;
          throw timeout(id);
        }
        woken = new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      set.delete(listener);
      if (set.size === 0) this.#waiting.delete(id);
    }
  }

  async #polled(id: string, deadline: number): Promise<StoredJob> {
    let interval = 20;
    for (;;) {
      const job = await this.#finished(id);
      if (job !== undefined) return job;
      const left = deadline - Date.now();
      if (left <= 0) throw timeout(id);
      await new Promise((resolve) => setTimeout(resolve, Math.min(interval, left)));
      interval = Math.min(interval * 2, 1_000);
    }
  }
}

function timeout(id: string): WaitTimeoutError {
  return new WaitTimeoutError(`[jobs] job ${id} did not finish in time; it goes on (wait again, or cancel it)`);
}
