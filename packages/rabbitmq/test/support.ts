/**
 * Test support: the broker URL from the environment, unique prefixes so runs never share objects,
 * clean-up of what a run declared, and a private RabbitMQ node that tests may kill and restart
 * (its own node name, ports and directories; never the machine's `rabbit@localhost`).
 */

import { randomBytes } from "node:crypto";
import type { Broker } from "@jobs/core";
import amqp from "amqplib";
import { createRabbitmqBroker, type RabbitmqBroker, type RabbitmqBrokerOptions } from "../src/index.js";

/** A prefix no other run uses. */
export function uniquePrefix(tag: string): string {
  return `jobs-test-${tag}-${randomBytes(3).toString("hex")}.`;
}

/** Brokers of one test file: records every queue they touch, and deletes those queues and the ladder exchanges at the end. */
export class Tracker {
  readonly queues: Set<string> = new Set();
  readonly levels: number;
  constructor(
    readonly url: string,
    readonly prefix: string,
    readonly options: Partial<RabbitmqBrokerOptions> = {},
  ) {
    this.levels = options.delayLevels ?? 16;
  }

  /** A new broker on `url` (or another endpoint) whose queue names are recorded. */
  broker(options: Partial<RabbitmqBrokerOptions> = {}, endpoint?: { readonly host: string; readonly port: number }): RabbitmqBroker {
    let url = this.url;
    if (endpoint !== undefined) {
      const u = new URL(this.url);
      u.hostname = endpoint.host;
      u.port = String(endpoint.port);
      url = u.toString();
    }
    const broker = createRabbitmqBroker({
      url,
      prefix: this.prefix,
      heartbeat: "2s",
      requestTimeout: "5s",
      maxReconnectDelay: "500ms",
      ...this.options,
      ...options,
    });
    const seen = (queue: string): void => {
      this.queues.add(queue);
    };
    const wrapped: RabbitmqBroker = {
      name: broker.name,
      capabilities: broker.capabilities,
      on: broker.on,
      publish: (q, m) => {
        seen(q);
        return broker.publish(q, m);
      },
      consume: (q, o, d) => {
        seen(q);
        return broker.consume(q, o, d);
      },
      counts: (q) => {
        seen(q);
        return broker.counts(q);
      },
      listDeadLetters: (q, o) => broker.listDeadLetters(q, o),
      removeDeadLetters: (q, k) => broker.removeDeadLetters(q, k),
      purge: (q) => broker.purge(q),
      deleteQueue: (q) => broker.deleteQueue(q),
      close: () => broker.close(),
    };
    return wrapped;
  }

  /** Deletes every queue recorded and the ladder exchanges of the prefix. */
  async cleanUp(): Promise<void> {
    const cleaner = this.broker();
    try {
      for (const q of this.queues) await cleaner.deleteQueue(q);
    } finally {
      await cleaner.close();
    }
    const conn = await amqp.connect(this.url);
    try {
      const ch = await conn.createChannel();
      for (let i = 0; i < this.levels; i++) await ch.deleteExchange(`${this.prefix}delay.${i}`);
      await ch.deleteExchange(`${this.prefix}delay.out`);
    } finally {
      await conn.close();
    }
  }
}

/** Closes brokers at the end of a test. */
export function closeAll(brokers: readonly Broker[]): Promise<unknown> {
  return Promise.allSettled(brokers.map((b) => b.close()));
}

/** A private node (moved to @jobs/conformance, where the reliability suite uses it too). */
export { startPrivateRabbitMQ as startPrivateRabbit } from "@jobs/conformance";
