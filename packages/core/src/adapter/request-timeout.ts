/** A bound on how long an adapter waits for its broker's reply. */

/** A request got no reply within its time: it may or may not have reached the broker. */
export class RequestTimeoutError extends Error {
  /** The bound that ran out, in ms. */
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super(`no reply within ${timeoutMs} ms`);
    this.name = "RequestTimeout";
    this.timeoutMs = timeoutMs;
  }
}

/**
 * `request`, or a rejection with `RequestTimeoutError` once `timeoutMs` have passed without its
 * settling (the request itself may still complete later). The timer never keeps the process alive:
 * a settle still waiting for a reply after `close()` during an outage must not hold Node's exit.
 */
export function withTimeout<T>(request: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RequestTimeoutError(timeoutMs)), timeoutMs);
    timer.unref();
  });
  return Promise.race([request, timeout]).finally(() => clearTimeout(timer));
}
