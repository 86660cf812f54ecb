// The only file that differs between examples: how to reach the broker.
// Each call opens a new connection to RabbitMQ (JOBS_RABBITMQ_URL, or the local default).
// JOBS_RABBITMQ_QUEUE_TYPE=quorum runs it on quorum queues (under their own prefix: RabbitMQ
// refuses to redeclare an existing queue with another type).
import type { Broker } from "@jobs/core";
import { createRabbitmqBroker } from "@jobs/rabbitmq";

const url = process.env.JOBS_RABBITMQ_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const quorum = process.env.JOBS_RABBITMQ_QUEUE_TYPE === "quorum";

/** A new connection to RabbitMQ. */
export function connect(): Broker {
  return quorum ? createRabbitmqBroker({ url, queueType: "quorum", prefix: "jobs.quorum." }) : createRabbitmqBroker({ url });
}
