/** `@jobs/nats`: the NATS JetStream adapter (@nats-io/transport-node and @nats-io/jetstream). */
import { NatsAdapter, type NatsBroker } from "./broker.js";
import type { NatsBrokerOptions } from "./options.js";

export type { NatsBroker } from "./broker.js";
export { natsCapabilities } from "./capabilities.js";
export type { NatsBrokerOptions } from "./options.js";

/** Creates a broker on NATS JetStream: one work-queue stream, durable pull consumers per queue. */
export function createNatsBroker(options: NatsBrokerOptions = {}): NatsBroker {
  return new NatsAdapter(options);
}
