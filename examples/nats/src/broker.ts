// The only file that differs between examples: how to reach the broker.
// Every call opens a new connection to the NATS server (JetStream enabled) at JOBS_NATS_URL.
import type { Broker } from "@jobs/core";
import { createNatsBroker } from "@jobs/nats";

const url = process.env.JOBS_NATS_URL ?? "nats://127.0.0.1:4222";

/** A new connection to the NATS server; the broker creates its work-queue stream "JOBS" if missing. */
export function connect(): Broker {
  return createNatsBroker({ url });
}
