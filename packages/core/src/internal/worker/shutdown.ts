/**
 * Shutdown: `Worker.close()`. Stop fetching, release what has not started, let running jobs finish
 * until the abort time, then abort them and give them a short grace to settle. A later close() with
 * a shorter timeout brings the abort time forward.
 */
import { type Duration, parseDuration } from "../../duration.js";
import { BrokerClosedError } from "../../errors.js";
import { abortHandler, type HeldDelivery } from "./held-delivery.js";

/** How long aborted jobs may take to settle before close() resolves anyway (at most; less for a shorter timeout). */
const SHUTDOWN_GRACE_MS = 1_000;

/** What shutdown needs from the worker. */
export interface ShutdownHost {
  /** The worker's `shutdownTimeout` in ms. */
  readonly timeoutMs: number;
  /** Called once, synchronously, by the first close(): the worker stops starting jobs. */
  closing(): void;
  /** Stops every consumer; resolves when all have answered, whichever way. */
  stopConsumers(): Promise<unknown>;
  /** Releases every held job that has not started. */
  releaseUnstarted(): void;
  running(): Iterable<HeldDelivery>;
  /** Nothing runs and nothing settles. */
  isIdle(): boolean;
  /** Called last: stop timers; the worker is closed. */
  closed(): void;
}

export class Shutdown {
  readonly #host: ShutdownHost;
  #closing: Promise<void> | undefined;
  /** When running jobs are aborted (Date.now() ms); a later close() with a shorter timeout moves it earlier. */
  #abortAt = Number.POSITIVE_INFINITY;
  /** While close() waits for running jobs: re-arms its timer for an earlier `#abortAt`. */
  #shorten: (() => void) | undefined;
  /** While close() waits: resolves its wait once the worker is idle. */
  #onIdle: (() => void) | undefined;

  constructor(host: ShutdownHost) {
    this.#host = host;
  }

  /** The worker is idle (nothing runs or settles): ends a wait of close(). */
  idle(): void {
    this.#onIdle?.();
  }

  /** `Worker.close`: idempotent; a later `timeout` shorter than what is left brings the abort forward. */
  close(timeout: Duration | undefined): Promise<void> {
    if (this.#closing !== undefined) {
      // A later call with a shorter timeout (a second SIGTERM, say) brings the abort forward.
      if (timeout !== undefined) {
        this.#abortAt = Math.min(this.#abortAt, Date.now() + parseDuration(timeout, "timeout"));
        this.#shorten?.();
      }
      return this.#closing;
    }
    const timeoutMs = timeout === undefined ? this.#host.timeoutMs : parseDuration(timeout, "timeout");
    this.#host.closing();
    this.#abortAt = Date.now() + timeoutMs;
    this.#closing = this.#close(timeoutMs);
    return this.#closing;
  }

  async #close(timeoutMs: number): Promise<void> {
    const host = this.#host;
    await host.stopConsumers();
    host.releaseUnstarted();
    if (!(await this.#idleWithin(Math.max(0, this.#abortAt - Date.now()), true))) {
      const reason = new BrokerClosedError("[jobs] worker is shutting down");
      for (const item of host.running()) {
        // Overdue (timed out, already settled and aborted): nothing to hand back.
        if (item.completed) continue;
        item.abortedByShutdown = true;
        abortHandler(item, reason);
      }
      await this.#idleWithin(Math.min(SHUTDOWN_GRACE_MS, Math.max(timeoutMs, 100)));
    }
    host.closed();
  }

  /** Resolves true once nothing runs or settles, false after `ms`; `shortenable`: ends at `#abortAt` if a later close() moves it earlier. */
  #idleWithin(ms: number, shortenable = false): Promise<boolean> {
    if (this.#host.isIdle()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const expire = (): void => {
        this.#onIdle = undefined;
        this.#shorten = undefined;
        resolve(false);
      };
      let timer = setTimeout(expire, ms);
      if (shortenable) {
        this.#shorten = () => {
          clearTimeout(timer);
          timer = setTimeout(expire, Math.max(0, this.#abortAt - Date.now()));
        };
      }
      this.#onIdle = () => {
        clearTimeout(timer);
        this.#onIdle = undefined;
        this.#shorten = undefined;
        resolve(true);
      };
    });
  }
}
