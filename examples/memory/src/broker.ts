// The only file that differs between examples: how to reach the broker.
// In-memory brokers share a server the way connections share a real broker.
import type { Broker } from "@jobs/core";
import { createMemoryBroker, createMemoryServer } from "@jobs/memory";

const server = createMemoryServer();

/** A new connection to the in-process broker. */
export function connect(): Broker {
  return createMemoryBroker({ server });
}
