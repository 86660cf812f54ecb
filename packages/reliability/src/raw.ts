/**
 * Raw writes to each broker in the adapter's own layout, bypassing `@jobs/core`'s producer: what a
 * foreign producer, another language or an attacker with write access can put in a queue
 * (RELIABILITY.md R5, T1, T3, T4). Each writer stores one message on the ready path of a logical
 * queue's normal-priority physical queue, exactly where the adapter's consumer reads it.
 */

import { randomUUID } from "node:crypto";
import { GetQueueUrlCommand, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { Broker } from "@jobs/core";
import { physicalQueue } from "@jobs/core/adapter";
import { redisQueueKeys } from "@jobs/redis";
import { sqsQueueNames } from "@jobs/sqs";
import { jetstream } from "@nats-io/jetstream";
import { connect as natsConnect } from "@nats-io/transport-node";
import amqp from "amqplib";
import { Redis } from "ioredis";
import { type BrokerSpec, createBroker, SQS_CREDENTIALS } from "./adapters.js";

/** Normal priority: the level every raw message is written at. */
const LEVEL = 2;

/** Writes raw message bodies to one adapter's broker. */
export interface RawWriter {
  /**
   * Stores `body` as one ready message of the logical `queue` (which a worker must have declared
   * already on brokers that need declared queues). Rejects with the broker client's own error when
   * the broker refuses it (NATS `max_payload`, SQS message size).
   */
  send(queue: string, body: string | Buffer): Promise<void>;
  /** Closes the raw connection. */
  close(): Promise<void>;
}

/**
 * A raw writer for the spec's broker. `capabilities` are the adapter's (they decide the physical
 * queue name: one per priority level when the broker has no native priority).
 */
export async function rawWriter(spec: BrokerSpec, capabilities: Broker["capabilities"]): Promise<RawWriter> {
  const physical = (queue: string): string => physicalQueue(queue, LEVEL, capabilities);
  switch (spec.adapter) {
    case "memory": {
      // The memory "broker" is the process itself: a second connection to the same server with no
      // size limit of its own stands for a foreign producer. No `local` copy: core must decode.
      const broker = createBroker(spec, { maxPayloadBytes: 256 * 1024 * 1024 });
      let n = 0;
      return {
        async send(queue, body) {
          const text = typeof body === "string" ? body : body.toString("utf8");
          const [outcome] = await broker.publish(physical(queue), [
            { id: `raw-${++n}`, body: text, priority: LEVEL, delayMs: 0, dedupe: false },
          ]);
          if (outcome === undefined || !outcome.ok) throw outcome?.error ?? new Error("raw memory publish: no outcome");
        },
        close: () => broker.close(),
      };
    }
    case "redis": {
      const redis = new Redis(spec.url, { maxRetriesPerRequest: 1, lazyConnect: false });
      return {
        async send(queue, body) {
          // publish.lua's layout: message key "<level><seq>", body in the body hash, key LPUSHed on
          // the level's waiting list, a token on the wake list for a blocked consumer.
          const keys = redisQueueKeys(physical(queue), spec.namespace);
          const seq = await redis.incr(keys.seq);
          const key = `${LEVEL}${seq}`;
          await redis.multi().hset(keys.body, key, body).lpush(keys.waiting[LEVEL], key).lpush(keys.wake, "1").exec();
        },
        async close() {
          await redis.quit().catch(() => {});
          redis.disconnect();
        },
      };
    }
    case "rabbitmq": {
      const connection = await amqp.connect(spec.url);
      const channel = await connection.createConfirmChannel();
      return {
        async send(queue, body) {
          // The adapter's work queue is `<prefix><queue>`; the suite's prefix is `<namespace>.`.
          channel.sendToQueue(`${spec.namespace}.${physical(queue)}`, typeof body === "string" ? Buffer.from(body, "utf8") : body, {
            persistent: true,
          });
          await channel.waitForConfirms();
        },
        async close() {
          await channel.close().catch(() => {});
          await connection.close().catch(() => {});
        },
      };
    }
    case "nats": {
      const nc = await natsConnect({ servers: spec.url.replace(/^nats:\/\//, ""), maxReconnectAttempts: 0 });
      const js = jetstream(nc);
      // createBroker's subject prefix (its `prefix` option): `<prefix>.<queue>.ready` is the ready subject.
      const natsPrefix = spec.namespace.replace(/[^A-Za-z0-9_-]/g, "_");
      return {
        async send(queue, body) {
          await js.publish(`${natsPrefix}.${physical(queue)}.ready`, typeof body === "string" ? new TextEncoder().encode(body) : body);
        },
        async close() {
          await nc.close();
        },
      };
    }
    case "sqs": {
      const client = new SQSClient({ endpoint: spec.url, region: "us-east-1", credentials: SQS_CREDENTIALS });
      const urls = new Map<string, string>();
      return {
        async send(queue, body) {
          const name = sqsQueueNames(physical(queue), { prefix: `${spec.namespace}-` }).queue;
          let url = urls.get(name);
          if (url === undefined) {
            url = (await client.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl as string;
            urls.set(name, url);
          }
          await client.send(
            new SendMessageCommand({ QueueUrl: url, MessageBody: typeof body === "string" ? body : body.toString("utf8") }),
          );
        },
        async close() {
          client.destroy();
        },
      };
    }
  }
}

/**
 * The wire text of an envelope as a foreign producer would write it: every field valid unless
 * `fields` overrides it (`undefined` removes a field), the payload given as raw JSON text so that
 * it can hold what `JSON.stringify` cannot produce (duplicate or `__proto__` keys, 100,000 levels).
 */
export function rawEnvelope(fields: Readonly<Record<string, unknown>>, payloadJson: string): string {
  const now = Date.now();
  const base: Record<string, unknown> = {
    v: 1,
    id: randomUUID(),
    name: "raw.job",
    queue: "default",
    attempt: 1,
    maxAttempts: 3,
    priority: "normal",
    enqueuedAt: now,
    runAt: now,
    timeout: 10_000,
    ...fields,
  };
  for (const [k, v] of Object.entries(base)) if (v === undefined) delete base[k];
  return `${JSON.stringify(base).slice(0, -1)},"payload":${payloadJson}}`;
}
