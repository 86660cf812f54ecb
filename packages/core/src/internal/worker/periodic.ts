/**
 * A pass a worker runs on a timer while started (the sweeper, the pruner): the timer does not keep
 * the process alive, and a pass still running when the next is due is not started again.
 */
export abstract class Periodic {
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }

  start(): void {
    this.#timer = setInterval(() => void this.#tick(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One pass; reports its own errors (the worker's `error` event) and never rejects. */
  protected abstract pass(): Promise<unknown>;

  async #tick(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      await this.pass();
    } finally {
      this.#running = false;
    }
  }
}
