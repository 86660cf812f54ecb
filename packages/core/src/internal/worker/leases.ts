/**
 * Leases: heartbeats renew the lease of every delivery the worker holds (buffered or running), and
 * a buffered delivery whose lease ran out must not start (`leaseExpired`).
 */
import type { HeldDelivery } from "./held-delivery.js";

/** What the heartbeat needs from the worker. */
export interface HeartbeatHost {
  /** `lease` in ms: each heartbeat asks for this much more. */
  readonly leaseMs: number;
  /** The broker can extend leases (`capabilities.leaseExtension`); without it heartbeats send nothing. */
  readonly canExtend: boolean;
  /** Every delivery held now: buffered, running, or a suspect waiting to start. */
  held(): Iterable<HeldDelivery>;
  /** A heartbeat failed: the lease is lost (the item is already marked). */
  lost(item: HeldDelivery, error: unknown): void;
  /** With a job store: renews the claims of the running jobs whose leases this tick renews (one heartbeat renews both). */
  readonly renewClaims: ((items: readonly HeldDelivery[]) => void) | undefined;
  /** With a job store: every tick, aborts the running jobs whose claims went unconfirmed too long (the local deadline). */
  readonly checkClaims: ((now: number) => void) | undefined;
}

/**
 * True when a buffered delivery may no longer start: a heartbeat failed, or no confirmed lease
 * covers it any more (an event-loop stall, heartbeats the broker never confirmed during a partition).
 */
export function leaseExpired(item: HeldDelivery, now: number, leaseMs: number): boolean {
  return item.leaseLost || now - item.leaseConfirmedAt >= leaseMs;
}

/** One interval for all held deliveries; each is renewed once a third of its lease has passed since its last heartbeat. */
export class Heartbeat {
  readonly #host: HeartbeatHost;
  #timer: NodeJS.Timeout | undefined;

  constructor(host: HeartbeatHost) {
    this.#host = host;
  }

  start(): void {
    this.#timer = setInterval(() => this.tick(), Math.max(50, this.#host.leaseMs / 6));
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Sends the heartbeats due now. */
  tick(): void {
    const host = this.#host;
    const now = Date.now();
    host.checkClaims?.(now);
    if (!host.canExtend) return;
    const leaseMs = host.leaseMs;
    const claimed: HeldDelivery[] = [];
    for (const item of host.held()) {
      // A completed job still listed is overdue: settled at its timeout, its delivery is no longer ours.
      if (item.leaseLost || item.completed || now - item.heartbeatSentAt < leaseMs / 3) continue;
      item.heartbeatSentAt = now;
      if (item.fence !== 0) claimed.push(item);
      item.delivery.extendLease(leaseMs).then(
        () => {
          if (now > item.leaseConfirmedAt) item.leaseConfirmedAt = now;
        },
        (error: unknown) => {
          item.leaseLost = true;
          host.lost(item, error);
        },
      );
    }
    if (claimed.length > 0) host.renewClaims?.(claimed);
  }
}
