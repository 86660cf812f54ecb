/** How long an adapter waits before its next reconnect (or re-poll) after failures. */

/** Options of `reconnectDelay`. */
export interface ReconnectDelayOptions {
  /** The wait after the first failure, in ms. */
  readonly initialMs: number;
  /** The longest wait, in ms. */
  readonly maxMs: number;
}

/**
 * The wait before retry number `attempt` (0 after the first failure): doubling from `initialMs` up
 * to `maxMs`, less up to 20 % at random, so that the workers of a fleet that lost their broker
 * together do not reconnect in step. Reconnects never give up: a broker may come back hours later.
 */
export function reconnectDelay(attempt: number, options: ReconnectDelayOptions): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 30);
  const ms = Math.min(options.maxMs, options.initialMs * 2 ** exponent);
  return Math.round(ms * (0.8 + Math.random() * 0.2));
}
