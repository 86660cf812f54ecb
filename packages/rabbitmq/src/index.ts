/** `@jobs/rabbitmq`: the RabbitMQ adapter (amqplib). */
import { warnDeprecated } from "@jobs/core/adapter";
import { RabbitMQAdapter, type RabbitmqBroker } from "./broker.js";
import type { RabbitmqBrokerOptions } from "./options.js";

export type { RabbitmqBroker } from "./broker.js";
export { rabbitmqCapabilities } from "./capabilities.js";
export type { RabbitmqBrokerOptions } from "./options.js";

/** Creates a broker on RabbitMQ (amqplib): confirm channels, a TTL + dead-letter delay ladder, dead-letter queues, reconnects. */
export function createRabbitmqBroker(options: RabbitmqBrokerOptions): RabbitmqBroker {
  return new RabbitMQAdapter(options);
}

/** @deprecated Renamed `createRabbitmqBroker` (same behaviour); removed in the next major release. */
export function createRabbitMQBroker(options: RabbitmqBrokerOptions): RabbitmqBroker {
  warnDeprecated(
    "JOBS_DEP_RABBITMQ_FACTORY",
    "[jobs] [rabbitmq] createRabbitMQBroker is deprecated and will be removed in the next major release: use createRabbitmqBroker",
  );
  return new RabbitMQAdapter(options);
}

/** @deprecated Renamed `RabbitmqBroker`; removed in the next major release. */
export type RabbitMQBroker = RabbitmqBroker;

/** @deprecated Renamed `RabbitmqBrokerOptions`; removed in the next major release. */
export type RabbitMQBrokerOptions = RabbitmqBrokerOptions;
