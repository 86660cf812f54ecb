/** Checks every adapter makes of what core hands it, with the same rule and the same error everywhere. */
import type { ConsumeOptions } from "../broker.js";
import { InvalidOptionsError, PayloadTooLargeError } from "../errors.js";

/**
 * Throws `InvalidOptionsError` naming the field unless `prefetch` is an integer from 1 to
 * `maxPrefetch` and `leaseMs` a finite number above 0. Core's worker never passes anything else;
 * this guards adapters used directly.
 */
export function assertConsumeOptions(options: ConsumeOptions, maxPrefetch: number = Number.MAX_SAFE_INTEGER): void {
  const prefetch = (options as Partial<ConsumeOptions> | null | undefined)?.prefetch;
  if (!Number.isInteger(prefetch) || (prefetch as number) < 1 || (prefetch as number) > maxPrefetch) {
    const range = maxPrefetch === Number.MAX_SAFE_INTEGER ? "a positive integer" : `an integer from 1 to ${maxPrefetch}`;
    throw new InvalidOptionsError("prefetch", `expected ${range}, got ${String(prefetch)}`);
  }
  const leaseMs = options.leaseMs;
  if (typeof leaseMs !== "number" || !(leaseMs > 0) || !Number.isFinite(leaseMs)) {
    throw new InvalidOptionsError("leaseMs", `expected a positive number of ms, got ${String(leaseMs)}`);
  }
}

/**
 * The error for a message body over `limit` bytes of UTF-8, or undefined when it fits. Counts bytes
 * only near the limit: a string of n UTF-16 units is at most 3n bytes.
 */
export function payloadTooLarge(body: string, limit: number, what = "message"): PayloadTooLargeError | undefined {
  if (body.length * 3 <= limit) return undefined;
  const size = Buffer.byteLength(body, "utf8");
  return size > limit ? new PayloadTooLargeError(size, limit, what) : undefined;
}
