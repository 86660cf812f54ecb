// The only file that differs between examples: how to reach the broker.
// Each call opens a new connection to RabbitMQ (JOBS_RABBITMQ_URL, or the local default).
import type { Broker } from "@jobs/core";
import { createRabbitMQBroker } from "@jobs/rabbitmq";

const url = process.env.JOBS_RABBITMQ_URL ?? "amqp://guest:guest@127.0.0.1:5672";

/** A new connection to RabbitMQ. */
export function connect(): Broker {
  return createRabbitMQBroker({ url });
}
