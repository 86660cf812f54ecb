import type { BrokerCapabilities } from "@jobs/core/adapter";

/** What the in-memory broker does natively. */
export const memoryCapabilities: BrokerCapabilities = {
  priority: "native",
  maxDelayMs: Number.POSITIVE_INFINITY,
  maxPayloadBytes: 1_048_576,
  dedupeWindowMs: 300_000,
  leaseExtension: true,
  durable: false,
  redeliverOnClose: true,
  timerResolutionMs: 1,
};

/** The limits a broker's options set (see options.ts). */
export type MemoryLimits = Pick<BrokerCapabilities, "maxPayloadBytes" | "priority" | "maxDelayMs" | "dedupeWindowMs">;

/** One broker's capabilities: the defaults narrowed by its options. */
export function memoryInstanceCapabilities(limits: MemoryLimits): BrokerCapabilities {
  return { ...memoryCapabilities, ...limits };
}
