/** What SQS does natively, and how an instance's options narrow it. */
import type { BrokerCapabilities } from "@jobs/core/adapter";

/** What SQS does natively (standard queues; a FIFO instance narrows delays and adds dedupe). */
export const sqsCapabilities: BrokerCapabilities = {
  priority: "none",
  maxDelayMs: 900_000,
  maxPayloadBytes: 1_048_576,
  dedupeWindowMs: 0,
  leaseExtension: true,
  durable: true,
  redeliverOnClose: false,
  timerResolutionMs: 1_000,
  exactPurge: false,
};

/** The capabilities of one instance: its `maxPayloadBytes`, and FIFO's 5-minute dedupe window. */
export function sqsInstanceCapabilities(settings: { readonly fifo: boolean; readonly maxPayloadBytes: number }): BrokerCapabilities {
  return { ...sqsCapabilities, maxPayloadBytes: settings.maxPayloadBytes, dedupeWindowMs: settings.fifo ? 300_000 : 0 };
}
