/** `@jobs/rabbitmq`: the RabbitMQ adapter (amqplib). */
import { RabbitMQAdapter, type RabbitMQBroker } from "./broker.js";
import type { RabbitMQBrokerOptions } from "./options.js";

export type { RabbitMQBroker } from "./broker.js";
export { rabbitmqCapabilities } from "./capabilities.js";
export type { RabbitMQBrokerOptions } from "./options.js";

/** Creates a broker on RabbitMQ (amqplib): confirm channels, a TTL + dead-letter delay ladder, dead-letter queues, reconnects. */
export function createRabbitMQBroker(options: RabbitMQBrokerOptions): RabbitMQBroker {
  return new RabbitMQAdapter(options);
}
