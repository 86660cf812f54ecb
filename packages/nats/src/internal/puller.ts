import { clock, reconnectDelay } from "@jobs/core/adapter";
import { createInbox, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";

/** How long one pull request waits on the server by default before it expires (and is renewed). */
export const EXPIRES_MS = 30_000;
/** A pull that has seen neither a message nor a status this long after its expiry is presumed lost. */
const STALL_AFTER_MS = 5_000;
const NAK = "-NAK";
/**
 * The pause before starting over after a pull request ended without saying what it delivered:
 * core's reconnectDelay, 1 s less up to 20 %, so that the consumers of a fleet do not start over in step.
 */
const RESTART = { initialMs: 1_000, maxMs: 1_000 } as const;

/**
 * A pull consumer loop over one durable consumer: keeps `unsettled + requested ≤ prefetch` by
 * sending pull requests (`batch` = free slots) to a private inbox, and renews the inbox after a
 * reconnect so that requests of a dead connection can never deliver beyond the limit.
 *
 * `pause()` sends no more requests and resolves once none is outstanding. JetStream (2.9 included)
 * has no way to cancel one, but each ends by itself: when it delivered its whole batch, or with a
 * 408/409 status that says how many messages it did not deliver, sent after its last message. So
 * `requested` (what outstanding requests may still deliver) reaching 0 is the fence, and the
 * requests' `expires` bounds how long a pause waits.
 */
export class Puller {
  unsettled = 0;
  #requested = 0;
  #sub: Subscription | undefined;
  #inbox = "";
  #stopped = false;
  #paused = false;
  /** Pauses waiting for the outstanding requests to end. */
  #fences: (() => void)[] = [];
  #lastActivity = 0;
  readonly #watchdog: NodeJS.Timeout;
  readonly #threshold: number;
  readonly #next: string;

  constructor(
    private readonly nc: NatsConnection,
    api: string,
    readonly prefetch: number,
    private readonly onMessage: (msg: Msg) => void,
    /** How long each pull request lasts on the server: the longest a `pause()` waits. */
    private readonly expiresMs: number = EXPIRES_MS,
  ) {
    this.#next = api;
    this.#threshold = Math.max(1, Math.ceil(prefetch / 2));
    const stallMs = expiresMs + STALL_AFTER_MS;
    this.#watchdog = setInterval(() => {
      if (this.#requested > 0 && clock.now() - this.#lastActivity > stallMs) this.reset();
    }, stallMs / 2);
    this.#watchdog.unref();
  }

  /**
   * No more pull requests until `resume()`; resolves once no request sent so far can deliver
   * anything more (messages it delivers meanwhile are handed out as usual).
   */
  pause(): Promise<void> {
    this.#paused = true;
    if (this.#requested === 0 || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => this.#fences.push(resolve));
  }

  /** Undoes `pause()`: asks for the free slots again. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.pull();
  }

  /** Resolves the pauses once nothing is requested any more. */
  #fence(): void {
    if (this.#fences.length === 0 || (this.#requested > 0 && !this.#stopped)) return;
    for (const resolve of this.#fences.splice(0)) resolve();
  }

  /** Subscribes a fresh inbox and asks for `prefetch - unsettled` messages. */
  reset(): void {
    if (this.#stopped) return;
    this.#sub?.unsubscribe();
    this.#requested = 0;
    this.#inbox = createInbox();
    this.#sub = this.nc.subscribe(this.#inbox, { callback: (_error, msg) => this.#receive(msg) });
    // Requests on the old inbox deliver nowhere any more (the server drops a request without interest).
    this.#fence();
    this.pull();
  }

  /** Sends a pull request when enough slots are free (or nothing is requested at all). */
  pull(): void {
    if (this.#stopped || this.#paused) return;
    const free = this.prefetch - this.unsettled - this.#requested;
    if (free <= 0 || (free < this.#threshold && this.#requested > 0)) return;
    this.#requested += free;
    this.#lastActivity = clock.now();
    this.#send(this.#next, `{"batch":${free},"expires":${this.expiresMs * 1e6}}`, this.#inbox);
  }

  /** A delivery of this consumer was settled: its slot is free again. */
  release(): void {
    this.unsettled--;
    this.pull();
  }

  #receive(msg: Msg): void {
    this.#lastActivity = clock.now();
    if (msg.reply === undefined || msg.reply === "") {
      // A status: 408 (request expired) or 409 (request ended) carry how many messages it did not deliver.
      const code = msg.headers?.code ?? 0;
      if (code >= 400) {
        const pending = Number(msg.headers?.get("Nats-Pending-Messages"));
        if (Number.isFinite(pending) && pending > 0) {
          this.#requested = Math.max(0, this.#requested - pending);
          this.#fence();
          this.pull();
        } else {
          // An ended request that does not say how much it delivered (consumer deleted, too many
          // waiting requests): start over a moment later, on a fresh inbox, rather than spin.
          this.#requested = this.prefetch;
          setTimeout(() => this.reset(), reconnectDelay(0, RESTART)).unref();
        }
      }
      return;
    }
    if (this.#requested > 0) this.#requested--;
    if (this.#stopped || this.unsettled >= this.prefetch) {
      // Sent by a request of a stopped consumer or of a dead connection: hand it back at once.
      this.#send(msg.reply, NAK);
    } else {
      this.unsettled++;
      this.onMessage(msg);
    }
    if (this.#requested === 0) this.#fence();
  }

  #send(subject: string, data: string, reply?: string): void {
    try {
      this.nc.publish(subject, data, reply === undefined ? undefined : { reply });
    } catch {
      // The connection was closed under us (a shared connection): nothing left to ask for.
      this.stop();
    }
  }

  /** No more pull requests; the inbox is dropped, so the server stops sending to it. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#watchdog);
    try {
      this.#sub?.unsubscribe();
    } catch {
      // Already gone with its connection.
    }
    this.#sub = undefined;
    this.#fence();
  }
}
