/** One entry waiting for its batch; `settle` is called exactly once with its outcome. */
export interface Pending<E, R> {
  readonly entry: E;
  readonly bytes: number;
  readonly resolve: (result: R) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Groups entries into requests of at most 10 entries and `maxBytes` bytes (the SQS batch limits).
 * A batch leaves when it is full, or after `lingerMs` (0: at the end of the current turn of the
 * event loop, which still gathers everything published synchronously together).
 */
export class Batcher<E, R> {
  #items: Pending<E, R>[] = [];
  #bytes = 0;
  #timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  readonly #inflight = new Set<Promise<void>>();

  constructor(
    private readonly send: (items: readonly Pending<E, R>[]) => Promise<void>,
    private readonly lingerMs: number,
    private readonly maxBytes: number,
  ) {}

  /** Queues an entry; resolves or rejects with its own outcome. */
  add(entry: E, bytes = 0): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      if (this.#items.length > 0 && this.#bytes + bytes > this.maxBytes) this.flush();
      this.#items.push({ entry, bytes, resolve, reject });
      this.#bytes += bytes;
      if (this.#items.length >= 10) this.flush();
      else if (this.#timer === undefined) {
        this.#timer = this.lingerMs <= 0 ? setImmediate(() => this.flush()) : setTimeout(() => this.flush(), this.lingerMs);
      }
    });
  }

  /** Sends what is queued now. */
  flush(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer as NodeJS.Timeout);
      clearImmediate(this.#timer as NodeJS.Immediate);
      this.#timer = undefined;
    }
    if (this.#items.length === 0) return;
    const items = this.#items;
    this.#items = [];
    this.#bytes = 0;
    const request = this.send(items).catch((error: unknown) => {
      for (const item of items) item.reject(error);
    });
    this.#inflight.add(request);
    void request.finally(() => this.#inflight.delete(request));
  }

  /** Sends what is queued and waits for every request in flight. */
  async drain(): Promise<void> {
    this.flush();
    await Promise.allSettled([...this.#inflight]);
  }
}
