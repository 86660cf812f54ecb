/** What NATS JetStream does natively. */
import type { BrokerCapabilities } from "@jobs/core/adapter";

/** What the NATS JetStream broker does natively (the defaults; options narrow `broker.capabilities`). */
export const natsCapabilities: BrokerCapabilities = {
  priority: "none",
  maxDelayMs: Number.POSITIVE_INFINITY,
  maxPayloadBytes: 1_000_000,
  dedupeWindowMs: 120_000,
  leaseExtension: true,
  durable: true,
  redeliverOnClose: false,
  timerResolutionMs: 10,
};

/** The capabilities of one instance: its payload limit, duplicate window and longest declared delay. */
export function natsInstanceCapabilities(maxPayloadBytes: number, dedupeWindowMs: number, maxDelayMs: number): BrokerCapabilities {
  return { ...natsCapabilities, maxPayloadBytes, dedupeWindowMs, maxDelayMs };
}
