/** RabbitMQ-specific checks: topology, names, unroutable publishes, the delay ladder, delivery counts, credentials. */
import { inspect } from "node:util";
import { brokerUrlFromEnv, createFaultProxy } from "@jobs/conformance";
import { createWorker, defineJob, JobsError } from "@jobs/core";
import type { Delivery, OutgoingMessage, PublishOutcome } from "@jobs/core/adapter";
import { waitFor } from "@jobs/core/testing";
import amqp from "amqplib";
import { afterAll, describe, expect, it } from "vitest";
import { createRabbitmqBroker, rabbitmqCapabilities } from "../src/index.js";
import { delayRoutingKey } from "../src/internal/topology.js";
import { closeAll, Tracker, uniquePrefix } from "./support.js";

const url = brokerUrlFromEnv("JOBS_RABBITMQ_URL");
let n = 0;
const msg = (body: string, fields: Partial<OutgoingMessage> = {}): OutgoingMessage => ({
  id: `m-${++n}`,
  body,
  priority: 2,
  delayMs: 0,
  dedupe: true,
  ...fields,
});
const errorOf = (outcome: PublishOutcome | undefined): unknown => (outcome !== undefined && !outcome.ok ? outcome.error : undefined);

it("spells a delay in binary over the ladder levels, highest level first", () => {
  expect(delayRoutingKey(5, 4, "q")).toBe("0.1.0.1.q");
  expect(delayRoutingKey(1, 3, "jobs_x")).toBe("0.0.1.jobs_x");
  expect(delayRoutingKey(2 ** 16 - 1, 16, "q")).toBe(`${"1.".repeat(16)}q`);
  expect(rabbitmqCapabilities.maxDelayMs).toBe(109 * 60_000); // 100 ms × (2^16 − 1) = 109.2 min, rounded down
});

it("rejects bad names and options with InvalidOptionsError before any broker call", async () => {
  expect(() => createRabbitmqBroker({ url: "amqp://127.0.0.1:1", prefix: "amq.jobs." })).toThrow(/reserved/);
  expect(() => createRabbitmqBroker({ url: "amqp://127.0.0.1:1", delayLevels: 0 })).toThrow(/delayLevels/);
  expect(() => createRabbitmqBroker({} as never)).toThrow(/url/);
  // Nothing listens on port 1: a name error must come first, without waiting for a connection.
  const broker = createRabbitmqBroker({ url: "amqp://127.0.0.1:1", requestTimeout: "20s" });
  try {
    const started = performance.now();
    for (const bad of ["bad name", "a.b", "q#", "x".repeat(250), ""]) {
      const error = await broker.publish(bad, [msg("x")]).catch((e: unknown) => e);
      expect(JobsError.isInstance(error) && error.code, String(error)).toBe("invalid-options");
    }
    await expect(broker.consume("a*b", { prefetch: 1, leaseMs: 1000 }, () => {})).rejects.toMatchObject({ code: "invalid-options" });
    expect(performance.now() - started).toBeLessThan(1000);
  } finally {
    await broker.close();
  }
});

it("warns (insecure-connection) about a non-loopback host without TLS, and not about loopback", async () => {
  const remote = createRabbitmqBroker({ url: "amqp://u:p@192.0.2.1:5672", requestTimeout: "1s" });
  const local = createRabbitmqBroker({ url: "amqp://127.0.0.1:1", requestTimeout: "1s" });
  const warnings: string[] = [];
  remote.on("insecure-connection", (e) => warnings.push(`remote: ${e.message}`));
  local.on("insecure-connection", (e) => warnings.push(`local: ${e.message}`));
  try {
    await waitFor(() => warnings.length > 0, { timeout: 2_000 });
    await new Promise((r) => setImmediate(r));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^remote: \[jobs\] \[rabbitmq\] .*TLS/);
  } finally {
    await closeAll([remote, local]);
  }
});

it("never puts the password of a URL into errors or events when the login is refused", async () => {
  const secret = "s3cr3t-P4ssw0rd-never-shown";
  const u = new URL(url ?? "amqp://127.0.0.1:5672");
  u.username = "guest";
  u.password = secret;
  const broker = createRabbitmqBroker({ url: u.toString(), requestTimeout: "1500ms", maxReconnectDelay: "200ms" });
  const seen: unknown[] = [];
  broker.on("disconnected", (e) => seen.push(e));
  broker.on("error", (e) => seen.push(e));
  try {
    const error = await broker.publish("creds", [msg("x")]).catch((e: unknown) => e);
    expect(JobsError.isInstance(error) && error.code).toBe("broker-connection");
    const text = [String(error), (error as Error).message, inspect(error, { depth: 10 }), inspect(seen, { depth: 10 })].join("\n");
    expect(text).not.toContain(secret);
    if (url !== undefined) expect(text).toMatch(/ACCESS_REFUSED|refused/i);
  } finally {
    await broker.close();
  }
});

describe.skipIf(url === undefined)("rabbitmq adapter [needs JOBS_RABBITMQ_URL]", () => {
  const tracker = new Tracker(url ?? "", uniquePrefix("ad"));
  afterAll(() => tracker.cleanUp());

  it("declares a classic work queue with x-max-priority 4, a dead-letter queue and 16 delay queues", async () => {
    const broker = tracker.broker();
    const conn = await amqp.connect(url as string);
    try {
      await broker.counts("topo");
      const ch = await conn.createChannel();
      ch.on("error", () => {});
      const w = `${tracker.prefix}topo`;
      for (const q of [w, `${w}.dead`, ...Array.from({ length: 16 }, (_, i) => `${w}.delay.${i}`)]) await ch.checkQueue(q);
      // Re-declaring with the same arguments succeeds; without the priority argument RabbitMQ refuses (406).
      await ch.assertQueue(w, { durable: true, arguments: { "x-queue-type": "classic", "x-max-priority": 4 } });
      await ch.assertQueue(`${w}.delay.3`, {
        durable: true,
        arguments: { "x-queue-type": "classic", "x-message-ttl": 800, "x-dead-letter-exchange": `${tracker.prefix}delay.2` },
      });
      const refused = await ch.assertQueue(w, { durable: true }).catch((e: unknown) => e);
      expect((refused as { code?: number }).code).toBe(406);
    } finally {
      await conn.close();
      await broker.close();
    }
  });

  it("warns (config-warning) once per queue whose longest job timeout exceeds consumerTimeout, and not for one at the limit", async () => {
    // priority "none": the worker consumes five physical queues per logical queue, still one warning each.
    const broker = tracker.broker({ priority: "none", consumerTimeout: "10m" });
    const warnings: string[] = [];
    broker.on("config-warning", (e) => warnings.push(e.message));
    const worker = createWorker({ broker, concurrency: 1 });
    try {
      worker
        .handle(defineJob({ name: "long", queue: "ctlong", timeout: "11m" }), () => {})
        .handle(defineJob({ name: "short", queue: "ctlong", timeout: "1m" }), () => {})
        .handle(defineJob({ name: "atlimit", queue: "ctequal", timeout: "10m" }), () => {});
      await worker.start();
      // consume() emits it synchronously: every warning is in once start() resolved.
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        /^\[jobs\] \[rabbitmq\] queue "ctlong": a job timeout of 660000 ms exceeds RabbitMQ's consumer_timeout \(600000 ms/,
      );
    } finally {
      await worker.close();
      await broker.close();
    }
  });

  it("says nothing about job timeouts when consumerTimeout is 0 (the server has none)", async () => {
    const broker = tracker.broker({ consumerTimeout: 0 });
    const warnings: string[] = [];
    broker.on("config-warning", (e) => warnings.push(e.message));
    const worker = createWorker({ broker, concurrency: 1 });
    try {
      worker.handle(defineJob({ name: "long", queue: "ctnone", timeout: "2h" }), () => {});
      await worker.start();
      expect(warnings).toEqual([]);
    } finally {
      await worker.close();
      await broker.close();
    }
  });

  it("refuses an existing queue declared with other arguments (classic where quorum is configured, non-durable) with InvalidOptionsError", async () => {
    const conn = await amqp.connect(url as string);
    const quorum = tracker.broker({ queueType: "quorum" });
    const classic = tracker.broker();
    try {
      const ch = await conn.createChannel();
      // What an older deployment (or someone else) left: a classic work queue, and a non-durable one.
      await ch.assertQueue(`${tracker.prefix}wasclassic__p2`, { durable: true, arguments: { "x-queue-type": "classic" } });
      await ch.assertQueue(`${tracker.prefix}transient`, { durable: false });
      const cases: [string, () => Promise<unknown>][] = [
        ["quorum publish", () => quorum.publish("wasclassic__p2", [msg("x")])],
        ["quorum consume", () => quorum.consume("wasclassic__p2", { prefetch: 1, leaseMs: 1_000 }, () => {})],
        ["quorum counts", () => quorum.counts("wasclassic__p2")],
        ["classic publish to a non-durable queue", () => classic.publish("transient", [msg("x")])],
      ];
      for (const [what, call] of cases) {
        const error = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(JobsError.isInstance(error) && error.code, `${what}: ${String(error)}`).toBe("invalid-options");
        expect((error as JobsError).retryable, what).toBe(false);
        expect((error as Error).message, what).toMatch(/inequivalent arg .*delete it \(deleteQueue\) or use another prefix/i);
      }
      // Nothing was stored in either.
      expect((await ch.checkQueue(`${tracker.prefix}wasclassic__p2`)).messageCount).toBe(0);
      expect((await ch.checkQueue(`${tracker.prefix}transient`)).messageCount).toBe(0);
      await ch.deleteQueue(`${tracker.prefix}transient`);
    } finally {
      await conn.close();
      await closeAll([quorum, classic]);
    }
  });

  it("acks written together (basic.ack multiple) settle exactly the acked deliveries: an unsettled earlier one comes back", async () => {
    const [producer, consumer, after] = [tracker.broker(), tracker.broker(), tracker.broker()];
    try {
      const bodies = Array.from({ length: 8 }, (_, i) => `m${i + 1}`);
      await producer.publish(
        "multi",
        bodies.map((b) => msg(b)),
      );
      const got = new Map<string, Delivery>();
      await consumer.consume("multi", { prefetch: 8, leaseMs: 60_000 }, (d) => got.set(d.body, d));
      await waitFor(() => got.size === 8, { timeout: 5_000 });
      const ack = (...names: string[]): Promise<unknown> => Promise.all(names.map((b) => (got.get(b) as Delivery).ack()));
      // m4 is never settled. One turn each: m6 above an unsettled m1; m1–m3 below m4 (one multiple ack);
      // m5, m7, m8 above the unsettled m4.
      await ack("m6");
      await ack("m1", "m2", "m3");
      await ack("m5", "m7", "m8");
      await consumer.close();
      const again: string[] = [];
      const acks: Promise<void>[] = [];
      await after.consume("multi", { prefetch: 10, leaseMs: 60_000 }, (d) => {
        again.push(d.body);
        acks.push(d.ack());
      });
      await waitFor(() => again.length >= 1, { timeout: 5_000 });
      await Promise.all(acks);
      const counts = await after.counts("multi");
      expect(again).toEqual(["m4"]);
      expect(counts.waiting + counts.active).toBe(0);
    } finally {
      await closeAll([producer, consumer, after]);
    }
  });

  describe("Subscription.pause / resume", () => {
    /** The consumers RabbitMQ has on the work queue: with none, nothing can be pushed to this process. */
    async function consumersOn(queue: string): Promise<number> {
      const conn = await amqp.connect(url as string);
      try {
        const ch = await conn.createChannel();
        return (await ch.checkQueue(`${tracker.prefix}${queue}`)).consumerCount;
      } finally {
        await conn.close();
      }
    }

    it("after pause() resolves nothing more is delivered, held deliveries still settle, and resume() delivers what waited", async () => {
      const [producer, consumer] = [tracker.broker(), tracker.broker()];
      try {
        await producer.publish("pause", [msg("h1"), msg("h2")]);
        const got = new Map<string, Delivery>();
        const sub = await consumer.consume("pause", { prefetch: 4, leaseMs: 60_000 }, (d) => got.set(d.body, d));
        await waitFor(() => got.size === 2, { timeout: 5_000 });
        await (sub.pause as () => Promise<void>)();
        // Cancelled (cancel-ok received): RabbitMQ has no consumer left to push to.
        expect(await consumersOn("pause")).toBe(0);
        await producer.publish("pause", [msg("later")]);
        // Held deliveries settle on their channel while paused.
        await (got.get("h1") as Delivery).ack();
        await (got.get("h2") as Delivery).retry(msg("h2-again", { delayMs: 0 }));
        expect(await consumer.counts("pause")).toMatchObject({ waiting: 2, active: 0 });
        expect([...got.keys()]).toEqual(["h1", "h2"]);
        (sub.resume as () => void)();
        await waitFor(() => got.has("later") && got.has("h2-again"), { timeout: 5_000, message: "resume() delivered nothing" });
        await Promise.all([(got.get("later") as Delivery).ack(), (got.get("h2-again") as Delivery).ack()]);
        expect(await consumer.counts("pause")).toMatchObject({ waiting: 0, active: 0 });
        expect(await consumersOn("pause")).toBe(1);
      } finally {
        await closeAll([producer, consumer]);
      }
    });

    it("stays paused across a reconnect, resumes on the new connection, and stops cleanly while paused", async () => {
      const u = new URL(url as string);
      const proxy = await createFaultProxy({ target: { host: u.hostname, port: Number(u.port || 5672) } });
      const [producer, consumer] = [tracker.broker(), tracker.broker({}, proxy.address)];
      const events: string[] = [];
      consumer.on("reconnected", () => events.push("reconnected"));
      try {
        const bodies: string[] = [];
        const sub = await consumer.consume("pause-reconnect", { prefetch: 4, leaseMs: 60_000 }, (d) => {
          bodies.push(d.body);
          d.ack().catch(() => {});
        });
        await (sub.pause as () => Promise<void>)();
        proxy.resetConnections();
        await waitFor(() => events.includes("reconnected"), { timeout: 15_000, message: "never reconnected" });
        await producer.publish("pause-reconnect", [msg("while-paused")]);
        expect(await consumersOn("pause-reconnect")).toBe(0);
        expect(bodies).toEqual([]);
        (sub.resume as () => void)();
        await waitFor(() => bodies.includes("while-paused"), { timeout: 5_000, message: "resume() after the reconnect delivered nothing" });
        await (sub.pause as () => Promise<void>)();
        await sub.stop();
        (sub.resume as () => void)();
        await producer.publish("pause-reconnect", [msg("after-stop")]);
        expect(await consumersOn("pause-reconnect")).toBe(0);
        expect(bodies).toEqual(["while-paused"]);
      } finally {
        await closeAll([producer, consumer]);
        await proxy.close();
      }
    }, 30_000);
  });

  it("reports a publish to a queue deleted behind its back as UnknownQueueError, then declares it again", async () => {
    const broker = tracker.broker();
    const conn = await amqp.connect(url as string);
    try {
      expect(await broker.publish("gone", [msg("first")])).toEqual([{ ok: true, duplicate: false }]);
      const ch = await conn.createChannel();
      await ch.deleteQueue(`${tracker.prefix}gone`);
      const [outcome] = await broker.publish("gone", [msg("lost?")]);
      expect(JobsError.isInstance(errorOf(outcome)) && (errorOf(outcome) as JobsError).code).toBe("unknown-queue");
      expect(await broker.publish("gone", [msg("again")])).toEqual([{ ok: true, duplicate: false }]);
      expect((await broker.counts("gone")).waiting).toBe(1);
    } finally {
      await conn.close();
      await broker.close();
    }
  });

  it("with declare: false, reports a queue nobody declared as UnknownQueueError", async () => {
    const broker = tracker.broker({ declare: false });
    try {
      const [outcome] = await broker.publish("undeclared", [msg("x")]);
      expect((errorOf(outcome) as JobsError | undefined)?.code).toBe("unknown-queue");
      await expect(broker.counts("undeclared")).rejects.toMatchObject({ code: "unknown-queue" });
      await expect(broker.consume("undeclared", { prefetch: 1, leaseMs: 1_000 }, () => {})).rejects.toMatchObject({
        code: "unknown-queue",
      });
    } finally {
      await broker.close();
    }
  });

  it("holds a delayed message in the ladder queues of its set bits, and never delivers early", async () => {
    const [producer, consumer] = [tracker.broker(), tracker.broker()];
    const conn = await amqp.connect(url as string);
    try {
      const ch = await conn.createChannel();
      const w = `${tracker.prefix}ladder`;
      // 500 ms = 5 units = levels 2 and 0: it waits in delay.2 first.
      await producer.publish("ladder", [msg("five", { delayMs: 500 })]);
      expect((await ch.checkQueue(`${w}.delay.2`)).messageCount).toBe(1);
      expect((await producer.counts("ladder")).delayed).toBe(1);
      const delays = [0, 100, 150, 333, 700, 1_000, 1_234, 1_600];
      const sentAt = performance.now();
      await producer.publish(
        "ladder",
        delays.map((d) => msg(`d${d}`, { delayMs: d })),
      );
      const arrived = new Map<string, number>();
      const acks: Promise<void>[] = [];
      await consumer.consume("ladder", { prefetch: 20, leaseMs: 30_000 }, (d: Delivery) => {
        arrived.set(d.body, performance.now() - sentAt);
        acks.push(d.ack());
      });
      await waitFor(() => arrived.size === delays.length + 1, { timeout: 10_000 });
      await Promise.all(acks);
      for (const d of delays) {
        const at = arrived.get(`d${d}`) as number;
        expect(at, `d${d}`).toBeGreaterThanOrEqual(d - 2);
        expect(at, `d${d}`).toBeLessThan(d + 1_500);
      }
    } finally {
      await conn.close();
      await closeAll([producer, consumer]);
    }
  });

  it("counts deliveries across lease expiries (1, 2, 3) and resets the count on defer", async () => {
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

  it("notices a silent connection by heartbeats, reconnects by itself and resumes its consumer", async () => {
    const u = new URL(url as string);
    const proxy = await createFaultProxy({ target: { host: u.hostname, port: Number(u.port || 5672) } });
    const [producer, consumer] = [tracker.broker(), tracker.broker({ heartbeat: "1s", requestTimeout: "2s" }, proxy.address)];
    const events: string[] = [];
    consumer.on("disconnected", () => events.push("disconnected"));
    consumer.on("reconnected", () => events.push("reconnected"));
    try {
      const bodies: string[] = [];
      await consumer.consume("silent", { prefetch: 10, leaseMs: 30_000 }, (d) => {
        bodies.push(d.body);
        d.ack().catch(() => {});
      });
      await producer.publish("silent", [msg("before")]);
      await waitFor(() => bodies.includes("before"), { timeout: 5_000 });
      // Both directions stop, as in a network partition: no FIN, no RST, only missing heartbeats.
      const pausedAt = performance.now();
      proxy.pause();
      await waitFor(() => events.includes("disconnected"), { timeout: 10_000, message: "the silent connection was never noticed" });
      expect(performance.now() - pausedAt).toBeLessThan(6_000);
      proxy.resume();
      await waitFor(() => events.includes("reconnected"), { timeout: 15_000, message: "never reconnected" });
      await producer.publish("silent", [msg("after")]);
      await waitFor(() => bodies.includes("after"), { timeout: 10_000, message: "the consumer did not resume" });
    } finally {
      proxy.setMode("pass");
      await closeAll([producer, consumer]);
      await proxy.close();
    }
  }, 60_000);

  it("rejects a publish whose connection dies before its confirm (it never hangs)", async () => {
    const u = new URL(url as string);
    const proxy = await createFaultProxy({ target: { host: u.hostname, port: Number(u.port || 5672) } });
    const broker = tracker.broker({ requestTimeout: "20s" }, proxy.address);
    try {
      await broker.publish("dies", [msg("warm-up")]);
      proxy.pause();
      const pending = broker.publish("dies", [msg("in-flight")]);
      proxy.resetConnections();
      const started = performance.now();
      const [outcome] = await pending;
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(outcome?.ok).toBe(false);
      expect(["enqueue-outcome-unknown", "broker-connection"]).toContain((errorOf(outcome) as JobsError).code);
    } finally {
      proxy.setMode("pass");
      await broker.close();
      await proxy.close();
    }
  });
});
