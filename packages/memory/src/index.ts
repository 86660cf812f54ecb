import type { Broker } from "@jobs/core/adapter";
import { MemoryAdapter } from "./broker.js";
import type { DrainOptions } from "./inspection.js";
import type { MemoryBrokerOptions } from "./options.js";
import type { MemoryServer } from "./server.js";

export { memoryCapabilities } from "./capabilities.js";
export type { MemoryBrokerOptions } from "./options.js";
export { createMemoryServer, MemoryServer } from "./server.js";

/** The memory broker: the Broker contract plus test controls. */
export interface MemoryBroker extends Broker {
  /** The shared state. */
  readonly server: MemoryServer;
  /** Stop deliveries (on the whole server). */
  pause(): void;
  /** Resume deliveries. */
  resume(): void;
  /**
   * Resolves once nothing is ready or in flight and no delayed job is due within `delayedWithin`
   * (so a worker has run everything enqueued). Rejects after `timeout`.
   */
  drain(options?: DrainOptions): Promise<void>;
}

/** Creates an in-memory broker. Pass `server` to share queues between several instances. */
export function createMemoryBroker(options: MemoryBrokerOptions = {}): MemoryBroker {
  return new MemoryAdapter(options);
}
