// The shared vocabulary on RabbitMQ: `createRabbitmqBroker` (the old `createRabbitMQBroker` still
// works, with one deprecation warning), `client` for a connection the user owns (the old
// `connection` likewise), and that client checked by its shape rather than amqplib's class.
import { randomUUID } from "node:crypto";
import { brokerUrlFromEnv } from "@jobs/conformance";
import type { Broker } from "@jobs/core";
import type { Delivery, OutgoingMessage } from "@jobs/core/adapter";
import { jobsWarningsOf, waitFor } from "@jobs/core/testing";
import amqp, { type ChannelModel } from "amqplib";
import { afterAll, describe, expect, it } from "vitest";
import { createRabbitMQBroker, createRabbitmqBroker } from "../src/index.js";
import { closeAll, Tracker, uniquePrefix } from "./support.js";

const url = brokerUrlFromEnv("JOBS_RABBITMQ_URL");

const msg = (body: string): OutgoingMessage => ({ id: randomUUID(), body, priority: 2, delayMs: 0, dedupe: true });

/** Publishes one message, takes it, acks it: the broker really works. */
async function roundTrip(broker: Broker, queue: string): Promise<void> {
  expect(await broker.publish(queue, [msg(`on ${queue}`)])).toEqual([{ ok: true, duplicate: false }]);
  const seen: Delivery[] = [];
  const sub = await broker.consume(queue, { prefetch: 1, leaseMs: 30_000 }, (d) => seen.push(d));
  const delivery = await waitFor(() => seen[0], { timeout: 5_000, message: `no delivery on ${queue}` });
  expect(delivery.body).toBe(`on ${queue}`);
  await delivery.ack();
  await sub.stop();
}

describe("option checks", () => {
  it("refuses a client without the methods the broker calls, and client with its old name connection", () => {
    expect(() => createRabbitmqBroker({ client: {} as ChannelModel })).toThrow(/invalid option "client".*no createConfirmChannel\(\)/);
    const look = { createConfirmChannel() {}, createChannel() {}, on() {}, close() {} } as unknown as ChannelModel;
    expect(() => createRabbitmqBroker({ client: look, connection: look })).toThrow('invalid option "connection"');
    expect(() => createRabbitmqBroker({})).toThrow(/invalid option "url".*options\.client/);
  });
});

describe.skipIf(url === undefined)("names old and new [needs JOBS_RABBITMQ_URL]", () => {
  const tracker = new Tracker(url ?? "", uniquePrefix("vocab"));
  afterAll(() => tracker.cleanUp());

  it("createRabbitMQBroker and options.connection still work, with one deprecation warning each", async () => {
    const conn = await amqp.connect(url as string);
    const brokers: Broker[] = [];
    try {
      const warnings = await jobsWarningsOf(() => {
        brokers.push(createRabbitMQBroker({ url: url as string, prefix: tracker.prefix }));
        brokers.push(createRabbitMQBroker({ url: url as string, prefix: tracker.prefix }));
        brokers.push(createRabbitmqBroker({ connection: conn, prefix: tracker.prefix }));
        brokers.push(createRabbitmqBroker({ connection: conn, prefix: tracker.prefix }));
      });
      expect(warnings.map((w) => [w.name, w.code])).toEqual([
        ["DeprecationWarning", "JOBS_DEP_RABBITMQ_FACTORY"],
        ["DeprecationWarning", "JOBS_DEP_RABBITMQ_CONNECTION"],
      ]);
      expect(warnings[0]?.message).toContain("use createRabbitmqBroker");
      expect(warnings[1]?.message).toContain('use "client"');
      tracker.queues.add("old-factory").add("old-connection");
      await roundTrip(brokers[0] as Broker, "old-factory");
      await roundTrip(brokers[2] as Broker, "old-connection");
    } finally {
      await closeAll(brokers);
      await conn.close();
    }
  });

  it("works on a client of another class with amqplib's shape (as from a second installed copy), and leaves it open", async () => {
    const real = await amqp.connect(url as string);
    /** Not amqplib's class: forwards what the broker calls on a connection. */
    class SecondCopy {
      createConfirmChannel = real.createConfirmChannel.bind(real);
      createChannel = real.createChannel.bind(real);
      on = real.on.bind(real);
      close = real.close.bind(real);
    }
    const client = new SecondCopy();
    const broker = createRabbitmqBroker({ client: client as unknown as ChannelModel, prefix: tracker.prefix });
    tracker.queues.add("look-alike");
    try {
      await roundTrip(broker, "look-alike");
      await broker.close();
      const ch = await real.createChannel();
      expect((await ch.checkQueue(`${tracker.prefix}look-alike`)).messageCount).toBe(0);
      await ch.close();
    } finally {
      await broker.close();
      await real.close();
    }
  });
});
