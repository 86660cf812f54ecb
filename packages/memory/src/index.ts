// @jobs/memory: the Broker contract in process memory, the embedded default and the test double.
import { MemoryAdapter, type MemoryBroker } from "./broker.js";
import type { MemoryBrokerOptions } from "./options.js";

export type { MemoryBroker } from "./broker.js";
export { memoryCapabilities } from "./capabilities.js";
export type { MemoryBrokerOptions } from "./options.js";
export { createMemoryServer, MemoryServer } from "./server.js";
export { createMemoryStore, type MemoryStore, memoryStoreCapabilities } from "./store.js";

/** Creates an in-memory broker. Pass `server` to share queues between several instances. */
export function createMemoryBroker(options: MemoryBrokerOptions = {}): MemoryBroker {
  return new MemoryAdapter(options);
}
