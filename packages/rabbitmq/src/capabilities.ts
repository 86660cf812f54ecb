/** What RabbitMQ does natively, and how an instance's options narrow it. */
import type { BrokerCapabilities } from "@jobs/core/adapter";

/** The ladder holds up to `unit × (2^levels − 1)` ms; declared rounded down to whole minutes (or seconds), which core never exceeds. */
function ladderMaxDelay(unitMs: number, levels: number): number {
  const ms = unitMs * (2 ** levels - 1);
  const step = ms >= 60_000 ? 60_000 : ms >= 1_000 ? 1_000 : 1;
  return Math.floor(ms / step) * step;
}

/** What RabbitMQ does natively with the default options (an instance narrows it from its options). */
export const rabbitmqCapabilities: BrokerCapabilities = {
  priority: "native",
  maxDelayMs: ladderMaxDelay(100, 16),
  maxPayloadBytes: 8_388_608,
  dedupeWindowMs: 0,
  leaseExtension: true,
  durable: true,
  redeliverOnClose: true,
  timerResolutionMs: 100,
  exactActiveCount: false,
};

/** The capabilities of one instance: its priority mode, payload limit and delay ladder. */
export function rabbitmqInstanceCapabilities(
  priority: BrokerCapabilities["priority"],
  maxPayloadBytes: number,
  unitMs: number,
  levels: number,
): BrokerCapabilities {
  return {
    ...rabbitmqCapabilities,
    priority,
    maxPayloadBytes,
    maxDelayMs: ladderMaxDelay(unitMs, levels),
    timerResolutionMs: Math.max(1, unitMs),
  };
}
