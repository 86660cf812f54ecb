/** What Redis does natively, and how an instance's options narrow it. */
import type { BrokerCapabilities } from "@jobs/core/adapter";

/** What the Redis adapter does natively (the defaults; an instance narrows them from its options). */
export const redisCapabilities: BrokerCapabilities = {
  priority: "native",
  maxDelayMs: Number.POSITIVE_INFINITY,
  maxPayloadBytes: 1_048_576,
  dedupeWindowMs: 300_000,
  leaseExtension: true,
  durable: true,
  redeliverOnClose: false,
  timerResolutionMs: 25,
};

/** The capabilities of one instance: its payload limit and dedupe window. */
export function redisInstanceCapabilities(maxPayloadBytes: number, dedupeWindowMs: number): BrokerCapabilities {
  return { ...redisCapabilities, maxPayloadBytes, dedupeWindowMs };
}
