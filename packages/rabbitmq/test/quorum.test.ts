/**
 * Quorum mode, the ack proof and a borrowed connection: quorum topology and options, RabbitMQ's own
 * delivery count, the `x-delivery-limit` backstop, acks that resolve only once RabbitMQ has them,
 * and `options.client`.
 */
import { brokerUrlFromEnv, createFaultProxy } from "@jobs/conformance";
import { JobsError } from "@jobs/core";
import type { Delivery, OutgoingMessage } from "@jobs/core/adapter";
import { waitFor } from "@jobs/core/testing";
import amqp from "amqplib";
import { afterAll, describe, expect, it } from "vitest";
import { createRabbitmqBroker } from "../src/index.js";
import { closeAll, Tracker, uniquePrefix } from "./support.js";

const url = brokerUrlFromEnv("JOBS_RABBITMQ_URL");
let n = 0;
const msg = (body: string): OutgoingMessage => ({ id: `q-${++n}`, body, priority: 2, delayMs: 0, dedupe: true });

it("quorum mode: priority is none (core routes each level to its own queue); bad combinations are InvalidOptionsError", async () => {
  const broker = createRabbitmqBroker({ url: "amqp://127.0.0.1:1", queueType: "quorum" });
  try {
    expect(broker.capabilities.priority).toBe("none");
  } finally {
    await broker.close();
  }
  const bad = [
    { queueType: "quorum", priority: "native" },
    { queueType: "stream" },
    { queueType: "quorum", deliveryLimit: 0 },
    { queueType: "quorum", deliveryLimit: 2.5 },
  ];
  for (const options of bad) {
    expect(() => createRabbitmqBroker({ url: "amqp://127.0.0.1:1", ...(options as object) })).toThrow(
      expect.objectContaining({ code: "invalid-options" }),
    );
  }
});

describe.skipIf(url === undefined)("rabbitmq quorum mode and acks [needs JOBS_RABBITMQ_URL]", () => {
  const tracker = new Tracker(url ?? "", uniquePrefix("qa"), { queueType: "quorum" });
  afterAll(() => tracker.cleanUp());

  it("declares a quorum work queue with x-delivery-limit dead-lettering into a classic dead queue; the ladder stays classic", async () => {
    const broker = tracker.broker({ deliveryLimit: 7 });
    const conn = await amqp.connect(url as string);
    try {
      await broker.counts("topo");
      const ch = await conn.createChannel();
      ch.on("error", () => {});
      const w = `${tracker.prefix}topo`;
      // Re-declaring with the same arguments succeeds: the queues exist with exactly these.
      await ch.assertQueue(w, {
        durable: true,
        arguments: {
          "x-queue-type": "quorum",
          "x-delivery-limit": 7,
          "x-dead-letter-exchange": "",
          "x-dead-letter-routing-key": `${w}.dead`,
        },
      });
      await ch.assertQueue(`${w}.dead`, { durable: true, arguments: { "x-queue-type": "classic" } });
      await ch.assertQueue(`${w}.delay.0`, {
        durable: true,
        arguments: { "x-queue-type": "classic", "x-message-ttl": 100, "x-dead-letter-exchange": `${tracker.prefix}delay.out` },
      });
      // As a classic queue it is refused (406): the work queue really is a quorum queue.
      const refused = await ch.assertQueue(w, { durable: true, arguments: { "x-queue-type": "classic" } }).catch((e: unknown) => e);
      expect((refused as { code?: number }).code).toBe(406);
    } finally {
      await conn.close();
      await broker.close();
    }
  });

  it("counts deliveries from RabbitMQ's x-delivery-count across lease expiries (1, 2, 3), and from 1 again after defer", async () => {
    const [producer, consumer] = [tracker.broker(), tracker.broker()];
    try {
      await producer.publish("counted", [msg("again and again")]);
      const counts: number[] = [];
      let last: Delivery | undefined;
      await consumer.consume("counted", { prefetch: 1, leaseMs: 200 }, (d) => {
        counts.push(d.deliveryCount);
        last = d;
      });
      await waitFor(() => counts.length >= 3, { timeout: 10_000 });
      expect(counts.slice(0, 3)).toEqual([1, 2, 3]);
      const before = counts.length;
      await (last as Delivery).extendLease(30_000);
      await (last as Delivery).defer(0);
      await waitFor(() => counts.length > before, { timeout: 5_000 });
      expect(counts[before]).toBe(1);
      await (last as Delivery).extendLease(30_000);
      await (last as Delivery).ack();
    } finally {
      await closeAll([producer, consumer]);
    }
  });

  it("past x-delivery-limit RabbitMQ dead-letters the message into <queue>.dead, listed as crash-loop without a recorded failure", async () => {
    const [producer, consumer] = [tracker.broker({ deliveryLimit: 2 }), tracker.broker({ deliveryLimit: 2 })];
    try {
      await producer.publish("limited", [msg("never settled")]);
      const counts: number[] = [];
      // Never settled: every lease expiry returns it (3 deliveries with a limit of 2).
      const sub = await consumer.consume("limited", { prefetch: 1, leaseMs: 150 }, (d) => counts.push(d.deliveryCount));
      await waitFor(async () => (await producer.counts("limited")).dead === 1, { timeout: 10_000, message: "never dead-lettered" });
      await sub.stop();
      expect(counts).toEqual([1, 2, 3]);
      const [letter] = await producer.listDeadLetters("limited", { limit: 10 });
      expect(letter?.body).toBe("never settled");
      expect(letter?.reason).toBe("crash-loop");
      expect(letter?.error.name).toBe("DeliveryLimitError");
      expect(letter?.failedAt).toBeGreaterThan(0);
      expect((await producer.counts("limited")).waiting).toBe(0);
    } finally {
      await closeAll([producer, consumer]);
    }
  });

  for (const queueType of ["classic", "quorum"] as const) {
    it(`${queueType}: an ack whose bytes never reached RabbitMQ does not resolve; it rejects when the connection goes, and the message comes back`, async () => {
      const u = new URL(url as string);
      const proxy = await createFaultProxy({ target: { host: u.hostname, port: Number(u.port || 5672) } });
      const t = queueType === "quorum" ? tracker : new Tracker(url as string, uniquePrefix("qc"), { queueType });
      const queue = `proof-${queueType}`;
      const [producer, consumer] = [t.broker(), t.broker({ requestTimeout: "3s" }, proxy.address)];
      try {
        const held: Delivery[] = [];
        const bodies: string[] = [];
        await consumer.consume(queue, { prefetch: 3, leaseMs: 30_000 }, (d) => {
          bodies.push(d.body);
          held.push(d);
        });
        await producer.publish(queue, [msg("a"), msg("b")]);
        await waitFor(() => held.length === 2, { timeout: 5_000 });
        // Acked normally: resolves (proven by the qos round trip, the queue being empty).
        await (held[0] as Delivery).ack();
        proxy.pause();
        let settled: "resolved" | "rejected" | undefined;
        const pending = (held[1] as Delivery).ack().then(
          () => {
            settled = "resolved";
          },
          (e: unknown) => {
            settled = "rejected";
            expect(JobsError.isInstance(e) && e.code).toBe("lease-lost");
          },
        );
        // A negative observation has no event to wait for: give the ack a window to resolve wrongly
        // (the proof fallback fires after 5 ms; this is twenty of them) before cutting the connection.
        await new Promise((r) => setTimeout(r, 100));
        expect(settled).toBeUndefined();
        proxy.resetConnections();
        await pending;
        expect(settled).toBe("rejected");
        proxy.resume();
        await waitFor(() => bodies.filter((b) => b === "b").length === 2, { timeout: 15_000, message: "b was not redelivered" });
        expect(bodies.filter((b) => b === "a")).toHaveLength(1);
        await (held[2] as Delivery).ack();
      } finally {
        proxy.setMode("pass");
        await closeAll([producer, consumer]);
        await proxy.close();
        if (t !== tracker) await t.cleanUp();
      }
    }, 60_000);
  }

  for (const queueType of ["classic", "quorum"] as const) {
    it(`${queueType}: a connection reset while a backlog is acked never redelivers a message whose ack resolved`, async () => {
      const u = new URL(url as string);
      const proxy = await createFaultProxy({ target: { host: u.hostname, port: Number(u.port || 5672) } });
      const t = queueType === "quorum" ? tracker : new Tracker(url as string, uniquePrefix("qr"), { queueType });
      const queue = `cut-${queueType}`;
      const [producer, consumer] = [t.broker(), t.broker({ requestTimeout: "3s" }, proxy.address)];
      try {
        const total = 400;
        await producer.publish(
          queue,
          Array.from({ length: total }, (_, i) => msg(`m${i}`)),
        );
        const resolved = new Set<string>();
        const rejected = new Set<string>();
        const redelivered: string[] = [];
        const seen = new Set<string>();
        let cut = false;
        await consumer.consume(queue, { prefetch: 10, leaseMs: 30_000 }, (d) => {
          if (seen.has(d.body) && resolved.has(d.body)) redelivered.push(d.body);
          seen.add(d.body);
          d.ack().then(
            () => {
              resolved.add(d.body);
              // Cut in the middle of the stream, right after an ack resolved.
              if (!cut && resolved.size === 150) {
                cut = true;
                proxy.resetConnections();
              }
            },
            // Cut before its proof: the ack may or may not have landed (redelivered, or not).
            () => rejected.add(d.body),
          );
        });
        const settled = (): number => new Set([...resolved, ...rejected]).size;
        await waitFor(
          async () => {
            if (settled() < total) return false;
            const c = await consumer.counts(queue);
            return c.waiting === 0 && c.active === 0;
          },
          { timeout: 30_000, message: "not every message was settled" },
        );
        expect(cut).toBe(true);
        expect(redelivered).toEqual([]);
      } finally {
        await closeAll([producer, consumer]);
        await proxy.close();
        if (t !== tracker) await t.cleanUp();
      }
    }, 60_000);
  }

  it("acks a backlog at prefetch 5: every ack resolves (proven by later deliveries and, at the end, a qos round trip) and nothing comes back", async () => {
    const [producer, consumer] = [tracker.broker(), tracker.broker()];
    try {
      await producer.publish(
        "backlog",
        Array.from({ length: 200 }, (_, i) => msg(`m${i}`)),
      );
      const seen = new Map<string, number>();
      let resolved = 0;
      await consumer.consume("backlog", { prefetch: 5, leaseMs: 30_000 }, (d) => {
        seen.set(d.body, (seen.get(d.body) ?? 0) + 1);
        void d.ack().then(() => resolved++);
      });
      await waitFor(() => resolved === 200, { timeout: 20_000, message: "not every ack resolved" });
      await consumer.close();
      expect(seen.size).toBe(200);
      expect([...seen.values()].every((v) => v === 1)).toBe(true);
      expect((await producer.counts("backlog")).waiting).toBe(0);
    } finally {
      await closeAll([producer, consumer]);
    }
  });
});

describe.skipIf(url === undefined)("options.client [needs JOBS_RABBITMQ_URL]", () => {
  const tracker = new Tracker(url ?? "", uniquePrefix("conn"));
  afterAll(() => tracker.cleanUp());

  it("works on a connection it was given, leaves it open on close(), and fails (without reconnecting) once it closes", async () => {
    const conn = await amqp.connect(url as string);
    const broker = createRabbitmqBroker({ client: conn, prefix: tracker.prefix, requestTimeout: "2s" });
    tracker.queues.add("given");
    const events: string[] = [];
    broker.on("reconnected", () => events.push("reconnected"));
    try {
      const outcomes = await broker.publish("given", [msg("on a borrowed connection"), msg("held at close")]);
      expect(outcomes).toEqual([
        { ok: true, duplicate: false },
        { ok: true, duplicate: false },
      ]);
      const bodies: string[] = [];
      let acked: Promise<void> | undefined;
      await broker.consume("given", { prefetch: 1, leaseMs: 30_000 }, (d) => {
        bodies.push(d.body);
        if (bodies.length === 1) acked = d.ack();
      });
      await waitFor(() => bodies.length === 2, { timeout: 5_000 });
      await acked;
      expect(bodies).toEqual(["on a borrowed connection", "held at close"]);
      await broker.close();
      // Still ours to use; the delivery held unsettled at close went back to the queue.
      const ch = await conn.createChannel();
      expect((await ch.checkQueue(`${tracker.prefix}given`)).messageCount).toBe(1);
      await ch.close();

      const second = createRabbitmqBroker({ client: conn, prefix: tracker.prefix, requestTimeout: "1s" });
      try {
        await second.counts("given");
        await conn.close();
        const error = await second.publish("given", [msg("after close")]).catch((e: unknown) => e);
        expect(JobsError.isInstance(error) && error.code).toBe("broker-connection");
        expect(events).toEqual([]);
      } finally {
        await second.close();
      }
    } finally {
      await broker.close();
      await conn.close().catch(() => {});
    }
  });
});
