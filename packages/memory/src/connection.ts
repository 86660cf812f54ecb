import { type BrokerEventMap, brokerEvents, type Emitter, type LoggerOption } from "@jobs/core/adapter";
import type { MemoryServer } from "./server.js";

/**
 * One broker's attachment to its `MemoryServer`, the in-process counterpart of a connection: it
 * never drops, so there is nothing to reconnect, time out or warn about. Its consumers and the
 * deliveries they hold are its own; closing it gives those deliveries back.
 */
export class MemoryConnection {
  readonly events: Emitter<BrokerEventMap>;
  closed: boolean = false;

  constructor(
    readonly server: MemoryServer,
    logger: LoggerOption,
  ) {
    this.events = brokerEvents("memory", logger);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const queue of this.server.queues.values()) {
      queue.consumers = queue.consumers.filter((c) => c.connection !== this);
      for (const lease of queue.active) {
        // Like a closed AMQP channel: this connection's unsettled deliveries go back to their queue.
        if (lease.consumer.connection === this) queue.release(lease, true);
      }
    }
  }
}
