/**
 * Batching per event-loop turn: the store calls of one run of synchronous code and the microtasks it
 * queues (the claims of every delivery one socket read brought, the finishes of every job that
 * completed in it) go to the store as one array, sent by `process.nextTick`. Nothing waits for a
 * later turn or a timer. Each caller gets its own item's outcome; a rejected batch rejects every caller.
 */
export class TurnBatch<Req, Res> {
  readonly #send: (requests: Req[]) => Promise<readonly Res[]>;
  #requests: Req[] = [];
  #waiters: { resolve(value: Res): void; reject(error: unknown): void }[] = [];
  #scheduled = false;

  constructor(send: (requests: Req[]) => Promise<readonly Res[]>) {
    this.#send = send;
  }

  /** Adds one request to this turn's batch. */
  add(request: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.#requests.push(request);
      this.#waiters.push({ resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        process.nextTick(() => this.#flush());
      }
    });
  }

  #flush(): void {
    const requests = this.#requests;
    const waiters = this.#waiters;
    this.#requests = [];
    this.#waiters = [];
    this.#scheduled = false;
    let sent: Promise<readonly Res[]>;
    try {
      sent = this.#send(requests);
    } catch (error) {
      sent = Promise.reject(error);
    }
    sent.then(
      (outcomes) => {
        for (let i = 0; i < waiters.length; i++) {
          const w = waiters[i] as (typeof waiters)[number];
          if (i < outcomes.length) w.resolve(outcomes[i] as Res);
          else w.reject(new Error(`[jobs] the store answered ${outcomes.length} of ${waiters.length} requests`));
        }
      },
      (error: unknown) => {
        for (const w of waiters) w.reject(error);
      },
    );
  }
}
