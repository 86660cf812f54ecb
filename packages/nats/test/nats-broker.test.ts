// NATS-specific checks: what the adapter builds on the server, and the mechanisms the conformance
// suite cannot see (duplicate window, delayed holding, dead-letter move, subject tokens, credentials).
import { type AddressInfo, createServer, type Socket } from "node:net";
import { inspect } from "node:util";
import { brokerUrlFromEnv, createFaultProxy, type PrivateServer } from "@jobs/conformance";
import { type Broker, createClient, createWorker, defineJob, JobsError } from "@jobs/core";
import type { Delivery, OutgoingMessage } from "@jobs/core/adapter";
import { waitFor } from "@jobs/core/testing";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNatsBroker, type NatsBrokerOptions, natsCapabilities } from "../src/index.js";
import { deleteStreams, endpointOf, startPrivateNats, uniqueTopology } from "./support.js";

const url = brokerUrlFromEnv("JOBS_NATS_URL");
let counter = 0;
const msg = (body: string, extra: Partial<OutgoingMessage> = {}): OutgoingMessage => ({
  id: `m-${++counter}`,
  body,
  priority: 2,
  delayMs: 0,
  dedupe: true,
  ...extra,
});

/**
 * Waits until a queue's counts match: JetStream applies an ack on the consumer's own loop, after
 * the ack's round trip has confirmed, so a consumer-info request sent right after can still count
 * the message as pending. A count that never reaches `expected` fails with the last one read.
 */
const countsReach = async (broker: Broker, queue: string, expected: { waiting: number; active: number }): Promise<void> => {
  let last: unknown;
  await waitFor(
    async () => {
      const counts = await broker.counts(queue);
      last = counts;
      return counts.waiting === expected.waiting && counts.active === expected.active;
    },
    { timeout: 5_000, message: `counts of "${queue}" never reached ${JSON.stringify(expected)}` },
  ).catch((error: Error) => {
    throw new Error(`${error.message}; last read ${JSON.stringify(last)}`);
  });
};

describe.skipIf(url === undefined)("nats adapter [needs JOBS_NATS_URL]", () => {
  const topology = uniqueTopology("unit");
  const brokers: Broker[] = [];
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const open = (options: NatsBrokerOptions = {}): Broker => {
    const broker = createNatsBroker({ url: url as string, ...topology, ...options });
    brokers.push(broker);
    return broker;
  };
  const subjectCount = async (subject: string): Promise<number> => {
    const info = await jsm.streams.info(topology.stream, { subjects_filter: subject });
    return info.state.subjects?.[subject] ?? 0;
  };
  const collect = (into: Delivery[]) => (d: Delivery) => {
    into.push(d);
  };

  beforeAll(async () => {
    const { host, port } = endpointOf(url as string);
    nc = await connect({ servers: `${host}:${port}` });
    jsm = await jetstreamManager(nc);
  });
  afterAll(async () => {
    await Promise.all(brokers.map((b) => b.close()));
    await deleteStreams(url as string, [topology.stream]);
    await nc.close();
  });

  it("creates a file-backed work-queue stream and, per queue, durable pull consumers with explicit acks and no MaxDeliver", async () => {
    const broker = open();
    await broker.consume("topo", { prefetch: 3, leaseMs: 2_000 }, () => {});
    const stream = await jsm.streams.info(topology.stream);
    expect(stream.config).toMatchObject({
      retention: "workqueue",
      storage: "file",
      subjects: [`${topology.prefix}.>`],
      duplicate_window: natsCapabilities.dedupeWindowMs * 1e6,
    });
    const ready = await jsm.consumers.info(topology.stream, "ready_topo");
    expect(ready.config).toMatchObject({
      durable_name: "ready_topo",
      filter_subject: `${topology.prefix}.topo.ready`,
      ack_policy: "explicit",
      ack_wait: 2_000 * 1e6,
      max_deliver: -1,
      max_ack_pending: -1,
    });
    const delayed = await jsm.consumers.info(topology.stream, "delayed_topo");
    expect(delayed.config).toMatchObject({
      filter_subject: `${topology.prefix}.topo.delayed`,
      max_deliver: -1,
      max_ack_pending: -1,
    });
    // A worker with a shorter lease lowers AckWait; a longer one keeps the shorter (and heartbeats).
    await open().consume("topo", { prefetch: 1, leaseMs: 1_000 }, () => {});
    await open().consume("topo", { prefetch: 1, leaseMs: 5_000 }, () => {});
    expect((await jsm.consumers.info(topology.stream, "ready_topo")).config.ack_wait).toBe(1_000 * 1e6);
    // Ready and delayed messages go to their own subjects.
    await broker.publish("topo2", [msg("now"), msg("later", { delayMs: 60_000 })]);
    expect(await subjectCount(`${topology.prefix}.topo2.ready`)).toBe(1);
    expect(await subjectCount(`${topology.prefix}.topo2.delayed`)).toBe(1);
    await broker.purge("topo2");
  });

  it("dedupes enqueues by job id within the duplicate window, per queue, and never dedupes dedupe: false publishes", async () => {
    const broker = open();
    const ready = `${topology.prefix}.dup.ready`;
    expect(await broker.publish("dup", [msg("a", { id: "same" })])).toEqual([{ ok: true, duplicate: false }]);
    expect(await broker.publish("dup", [msg("b", { id: "same" })])).toEqual([{ ok: true, duplicate: true }]);
    expect(await subjectCount(ready)).toBe(1);
    // Retries and requeues reuse the id on purpose.
    expect(await broker.publish("dup", [msg("c", { id: "same", dedupe: false })])).toEqual([{ ok: true, duplicate: false }]);
    expect(await subjectCount(ready)).toBe(2);
    // The same id on another queue is another job.
    expect(await broker.publish("dup2", [msg("d", { id: "same" })])).toEqual([{ ok: true, duplicate: false }]);
    await broker.purge("dup");
    await broker.purge("dup2");
  });

  it("sends Nats-Msg-Id only for caller-chosen ids: an enqueue whose id core generated leaves no duplicate-window entry", async () => {
    const broker = open();
    const ready = `${topology.prefix}.hdr.ready`;
    const client = createClient({ broker });
    const job = defineJob<{ n: number }>({ name: "hdr", queue: "hdr", priority: "normal" });
    // Through core's client, as applications enqueue: without an id and with one.
    await client.enqueue(job, { n: 1 });
    await client.enqueue(job, { n: 2 }, { id: "chosen-1" });
    expect((await client.enqueue(job, { n: 3 }, { id: "chosen-1" })).duplicate).toBe(true);
    const physical = `${topology.prefix}.hdr__p2.ready`;
    const first = await jsm.streams.getMessage(topology.stream, { last_by_subj: physical });
    expect(first).not.toBeNull();
    const msgIdOf = async (seq: number): Promise<string | undefined> =>
      (await jsm.streams.getMessage(topology.stream, { seq }))?.header?.get("Nats-Msg-Id") || undefined;
    const last = (first as { seq: number }).seq;
    expect(await msgIdOf(last)).toBe("hdr__p2:chosen-1");
    expect(await msgIdOf(last - 1)).toBeUndefined();
    // A generated id published twice by hand (nats.js never does) is stored twice: no window entry.
    const twice = msg("x", { id: "generated-1", generatedId: true });
    expect(await broker.publish("hdr", [twice])).toEqual([{ ok: true, duplicate: false }]);
    expect(await broker.publish("hdr", [twice])).toEqual([{ ok: true, duplicate: false }]);
    expect(await subjectCount(ready)).toBe(2);
    await broker.purge("hdr");
    await broker.purge("hdr__p2");
  });

  it("holds many delayed jobs without holding back ready ones, on a consumer of their own", async () => {
    const producer = open();
    const consumer = open();
    const delayed = Array.from({ length: 500 }, (_, i) => msg(`later-${i}`, { delayMs: 3_600_000 }));
    for (let i = 0; i < delayed.length; i += 100) await producer.publish("hold", delayed.slice(i, i + 100));
    const got: Delivery[] = [];
    await consumer.consume("hold", { prefetch: 2, leaseMs: 10_000 }, (d) => {
      got.push(d);
      void d.ack();
    });
    await producer.publish(
      "hold",
      Array.from({ length: 10 }, (_, i) => msg(`now-${i}`)),
    );
    await waitFor(() => got.length === 10, { timeout: 10_000, message: "ready jobs were held back" });
    expect(got.map((d) => d.body).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `now-${i}`).sort());
    // Every delayed job is held by nak(remaining) on the scheduler consumer: none on the ready one.
    await waitFor(async () => (await jsm.consumers.info(topology.stream, "delayed_hold")).num_ack_pending === 500, {
      timeout: 10_000,
      message: "the scheduler did not hold every delayed job",
    });
    expect((await jsm.consumers.info(topology.stream, "ready_hold")).num_ack_pending).toBe(0);
    expect(await producer.counts("hold")).toEqual({ waiting: 0, delayed: 500, active: 0, dead: 0 });
    await producer.purge("hold");
  }, 30_000);

  it("holds a delay longer than its hop limit over several hops, delivering once, on time, with deliveryCount 1", async () => {
    const producer = open({ maxDelay: "1s" });
    const consumer = open({ maxDelay: "1s" });
    expect(producer.capabilities.maxDelayMs).toBe(1_000);
    const got: { at: number; d: Delivery }[] = [];
    await consumer.consume("hops", { prefetch: 5, leaseMs: 10_000 }, (d) => {
      got.push({ at: performance.now(), d });
      void d.ack();
    });
    const sentAt = performance.now();
    await producer.publish("hops", [msg("far", { delayMs: 2_500 })]);
    await waitFor(() => got.length === 1, { timeout: 10_000, message: "delayed job not delivered" });
    expect(got[0]!.at - sentAt).toBeGreaterThanOrEqual(2_500 - 15);
    expect(got[0]!.d.deliveryCount).toBe(1);
    // Three hops of at most 1 s each on the scheduler consumer.
    expect((await jsm.consumers.info(topology.stream, "delayed_hops")).delivered.consumer_seq).toBeGreaterThanOrEqual(3);
  }, 20_000);

  it("refuses a maxDelay below 1 s at construction, naming the field (docs/adapters/nats.md)", () => {
    for (const maxDelay of ["999ms", 0, "500ms"]) {
      expect(() => createNatsBroker({ url: "nats://127.0.0.1:4222", maxDelay })).toThrow(/maxDelay.*at least 1 s/);
    }
  });

  it("runs a job delayed past maxDelayMs once, as attempt 1, through core's re-delay", async () => {
    const producer = open({ maxDelay: "1s" });
    const consumer = open({ maxDelay: "1s" });
    const job = defineJob<{ n: number }>({ name: "later", queue: "redelay" });
    const started: { attempt: number; at: number }[] = [];
    const worker = createWorker({ broker: consumer }).handle(job, (_payload, { job: info }) => {
      started.push({ attempt: info.attempt, at: Date.now() });
    });
    await worker.start();
    const enqueued = await createClient({ broker: producer }).enqueue(job, { n: 1 }, { delay: 2_200 });
    await waitFor(() => started.length === 1, { timeout: 10_000, message: "delayed job never ran" });
    expect(started[0]!.attempt).toBe(1);
    expect(started[0]!.at).toBeGreaterThanOrEqual(enqueued.runAt);
    await worker.close();
  }, 20_000);

  it("moves a dead letter to the dead subject with its failure, leaving nothing on the work subject", async () => {
    const producer = open();
    const consumer = open();
    const got: Delivery[] = [];
    await consumer.consume("dl", { prefetch: 1, leaseMs: 10_000 }, collect(got));
    await producer.publish("dl", [msg("doomed")]);
    await waitFor(() => got.length === 1, { timeout: 5_000 });
    await got[0]!.deadLetter({ body: "doomed+error", reason: "max-attempts", error: { name: "Error", message: "boom ✝" }, failedAt: 123 });
    await waitFor(async () => (await jsm.consumers.info(topology.stream, "ready_dl")).num_ack_pending === 0, { timeout: 5_000 });
    expect(await subjectCount(`${topology.prefix}.dl.ready`)).toBe(0);
    expect(await subjectCount(`${topology.prefix}.dl.dead`)).toBe(1);
    const [dead] = await producer.listDeadLetters("dl", { limit: 5 });
    expect(dead).toMatchObject({
      body: "doomed+error",
      reason: "max-attempts",
      error: { name: "Error", message: "boom ✝" },
      failedAt: 123,
    });
    await producer.purge("dl");
    expect(await producer.counts("dl")).toEqual({ waiting: 0, delayed: 0, active: 0, dead: 0 });
  });

  it("refuses queue names that would inject subject tokens or wildcards, sending nothing", async () => {
    const broker = open();
    const before = (await jsm.streams.info(topology.stream)).state.messages;
    for (const queue of ["a.b", "a*", "a>", "a b", "a\tb", "", "x".repeat(129)]) {
      const error = await broker.publish(queue, [msg("x")]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(JobsError.isInstance(error) && error.code === "invalid-options", `queue ${JSON.stringify(queue)}`).toBe(true);
      await expect(broker.consume(queue, { prefetch: 1, leaseMs: 1_000 }, () => {})).rejects.toMatchObject({ code: "invalid-options" });
      await expect(broker.counts(queue)).rejects.toMatchObject({ code: "invalid-options" });
    }
    expect((await jsm.streams.info(topology.stream)).state.messages).toBe(before);
    expect(() => createNatsBroker({ stream: "A.B" })).toThrow(/stream/);
    expect(() => createNatsBroker({ prefix: "jobs.>" })).toThrow(/"prefix"/);
  });

  it("says which subject no stream captures, with a typed error, when the stream is gone", async () => {
    const mine = uniqueTopology("gone");
    const broker = createNatsBroker({ url: url as string, ...mine });
    brokers.push(broker);
    expect(await broker.publish("q", [msg("x")])).toEqual([{ ok: true, duplicate: false }]);
    await deleteStreams(url as string, [mine.stream]);
    const [outcome] = await broker.publish("q", [msg("y")]);
    expect(outcome?.ok).toBe(false);
    const error = outcome?.ok === false ? outcome.error : undefined;
    expect(error?.code).toBe("unknown-queue");
    expect(error?.message).toMatch(/no JetStream stream captures "jobstest.*\.q\.ready"/);
  });

  it("notices a silent partition within seconds (pings), and resumes consuming once bytes flow again", async () => {
    const proxy = await createFaultProxy({ target: endpointOf(url as string) });
    try {
      const through = open({ url: `nats://${proxy.address.host}:${proxy.address.port}` });
      const events: string[] = [];
      through.on("disconnected", () => events.push("disconnected"));
      through.on("reconnected", () => events.push("reconnected"));
      const got: Delivery[] = [];
      await through.consume("partition", { prefetch: 5, leaseMs: 10_000 }, (d) => {
        got.push(d);
        void d.ack().catch(() => {});
      });
      const pausedAt = performance.now();
      proxy.pause();
      await waitFor(() => events.includes("disconnected"), { timeout: 15_000, message: "a silent partition went unnoticed" });
      // Two missed pings at a 2 s interval; nats.js alone would wait minutes.
      expect(performance.now() - pausedAt).toBeLessThan(10_000);
      proxy.resume();
      await waitFor(() => events.includes("reconnected"), { timeout: 15_000, message: "no reconnect after the partition healed" });
      await open().publish("partition", [msg("after-partition")]);
      await waitFor(() => got.some((d) => d.body === "after-partition"), { timeout: 10_000, message: "consumer did not resume" });
    } finally {
      await proxy.close();
    }
  }, 40_000);

  it("hands a message out once when the server redelivers it to the consumer still holding it: the held delivery takes the new lease", async () => {
    const broker = open();
    const got: Delivery[] = [];
    await broker.consume("held-redelivery", { prefetch: 3, leaseMs: 300 }, collect(got));
    await open().publish("held-redelivery", [msg("held")]);
    await waitFor(() => got.length === 1, { timeout: 10_000, message: "the first delivery did not arrive" });
    // Held without heartbeats past the AckWait (a partition does that to acks and heartbeats): the
    // server redelivers it to this consumer, which has free pull slots.
    await waitFor(async () => (await jsm.consumers.info(topology.stream, "ready_held-redelivery")).delivered.consumer_seq >= 2, {
      timeout: 10_000,
      message: "the server did not redeliver",
    });
    // Published after the redelivery was sent: it arrives after it, on the same inbox.
    await open().publish("held-redelivery", [msg("marker")]);
    await waitFor(() => got.some((d) => d.body === "marker"), { timeout: 10_000, message: "the marker did not arrive" });
    expect(got.map((d) => d.body)).toEqual(["held", "marker"]);
    expect(got[0]?.deliveryCount).toBe(1);
    // The redelivery renewed the held delivery's lease: it settles, and nothing is left.
    await got[0]?.ack();
    await got[1]?.ack();
    await countsReach(broker, "held-redelivery", { waiting: 0, active: 0 });
  }, 30_000);

  describe("Subscription.pause / resume", () => {
    /** Pull requests the server holds for the ready consumer: with none, nothing can be delivered to this process. */
    const waitingPulls = async (queue: string): Promise<number> =>
      (await jsm.consumers.info(topology.stream, `ready_${queue}`)).num_waiting;

    it("after pause() resolves (its pull requests ended) nothing more is delivered, held deliveries still settle, and resume() delivers what waited", async () => {
      const broker = open();
      const got: Delivery[] = [];
      const bodies = (): string[] => got.map((d) => d.body);
      const sub = await broker.consume("pause", { prefetch: 4, leaseMs: 30_000 }, collect(got));
      await open().publish("pause", [msg("h1"), msg("h2")]);
      await waitFor(() => got.length === 2, { timeout: 10_000 });
      // Two slots are still requested: the pause waits for that request to expire (a 408), within its 2 s.
      const pausing = performance.now();
      await (sub.pause as () => Promise<void>)();
      expect(performance.now() - pausing).toBeLessThan(4_000);
      expect(await waitingPulls("pause")).toBe(0);
      await open().publish("pause", [msg("later")]);
      // Held deliveries settle while paused.
      await (got[0] as Delivery).ack();
      await (got[1] as Delivery).retry(msg("h2-again"));
      await countsReach(broker, "pause", { waiting: 2, active: 0 });
      expect(await waitingPulls("pause")).toBe(0);
      expect(bodies()).toEqual(["h1", "h2"]);
      (sub.resume as () => void)();
      await waitFor(() => got.length === 4, { timeout: 10_000, message: "resume() delivered nothing" });
      expect(bodies().slice(2).sort()).toEqual(["h2-again", "later"]);
      await Promise.all(got.slice(2).map((d) => d.ack()));
      await countsReach(broker, "pause", { waiting: 0, active: 0 });
    }, 30_000);

    it("resolves a pause at once when every requested message was delivered, and stops cleanly while paused", async () => {
      const broker = open();
      const got: Delivery[] = [];
      const sub = await broker.consume("pause-full", { prefetch: 2, leaseMs: 30_000 }, collect(got));
      await open().publish("pause-full", [msg("a"), msg("b"), msg("c")]);
      await waitFor(() => got.length === 2, { timeout: 10_000 });
      const pausing = performance.now();
      await (sub.pause as () => Promise<void>)();
      // "At once": well inside the 2 s a pull request takes to expire.
      expect(performance.now() - pausing).toBeLessThan(1_500);
      // Acks free slots, yet nothing is asked for while paused.
      await Promise.all(got.map((d) => d.ack()));
      expect(await waitingPulls("pause-full")).toBe(0);
      await countsReach(broker, "pause-full", { waiting: 1, active: 0 });
      await sub.stop();
      (sub.resume as () => void)();
      expect(await waitingPulls("pause-full")).toBe(0);
      expect(got.map((d) => d.body)).toEqual(["a", "b"]);
    }, 30_000);

    it("stays paused across a reconnect and resumes on the new connection", async () => {
      const proxy = await createFaultProxy({ target: endpointOf(url as string) });
      try {
        const through = open({ url: `nats://${proxy.address.host}:${proxy.address.port}` });
        const events: string[] = [];
        through.on("reconnected", () => events.push("reconnected"));
        const got: Delivery[] = [];
        const sub = await through.consume("pause-reconnect", { prefetch: 3, leaseMs: 30_000 }, (d) => {
          got.push(d);
          void d.ack().catch(() => {});
        });
        await (sub.pause as () => Promise<void>)();
        proxy.resetConnections();
        await waitFor(() => events.includes("reconnected"), { timeout: 15_000, message: "never reconnected" });
        await open().publish("pause-reconnect", [msg("while-paused")]);
        expect(await waitingPulls("pause-reconnect")).toBe(0);
        expect(got).toEqual([]);
        (sub.resume as () => void)();
        await waitFor(() => got.some((d) => d.body === "while-paused"), {
          timeout: 10_000,
          message: "resume() after the reconnect delivered nothing",
        });
      } finally {
        await proxy.close();
      }
    }, 40_000);
  });

  it("works on an existing connection and leaves it open on close", async () => {
    const shared = await connect({ servers: `${endpointOf(url as string).host}:${endpointOf(url as string).port}` });
    try {
      const producer = createNatsBroker({ client: shared, ...topology });
      const consumer = createNatsBroker({ client: shared, ...topology });
      const got: Delivery[] = [];
      await consumer.consume("shared", { prefetch: 2, leaseMs: 10_000 }, (d) => {
        got.push(d);
        void d.ack();
      });
      await producer.publish("shared", [msg("over-a-shared-connection")]);
      await waitFor(() => got.length === 1, { timeout: 5_000 });
      await Promise.all([producer.close(), consumer.close()]);
      expect(shared.isClosed()).toBe(false);
      await shared.flush();
    } finally {
      await shared.close();
    }
  });

  it("warns that nats-server 2.9 fsyncs lazily", async () => {
    const warnings: string[] = [];
    const broker = open();
    broker.on("config-warning", ({ message }) => warnings.push(message));
    await broker.counts("warn");
    expect(warnings.some((w) => w.includes("sync_interval"))).toBe(true);
  });
});

describe.skipIf(url === undefined)("nats adapter credentials [needs JOBS_NATS_URL]", () => {
  let server: PrivateServer;
  const password = "s3cret-Pa55word";
  beforeAll(async () => {
    server = await startPrivateNats(["--user", "jobs", "--pass", password]);
  });
  afterAll(async () => {
    await server.stop();
  });

  it("connects with credentials from the URL and never shows them, also when they are wrong", async () => {
    const good = createNatsBroker({ url: `nats://jobs:${password}@127.0.0.1:${server.port}` });
    expect(await good.publish("cred", [msg("x")])).toEqual([{ ok: true, duplicate: false }]);
    await good.close();
    const wrong = "Wr0ngPa55-xyz";
    const bad = createNatsBroker({ url: `nats://jobs:${wrong}@127.0.0.1:${server.port}`, requestTimeout: "3s" });
    const error = await bad.publish("cred", [msg("x")]).then(
      () => undefined,
      (e: unknown) => e,
    );
    await bad.close();
    expect(JobsError.isInstance(error) && error.code === "broker-connection").toBe(true);
    const everything = `${String(error)}\n${(error as Error).stack}\n${inspect(error, { depth: 10 })}`;
    expect(everything).not.toContain(wrong);
    expect(everything).not.toContain(password);
  }, 20_000);
});

describe("nats adapter first connection", () => {
  it("stops retrying the first connection when closed before the server ever answered", async () => {
    // A listener that is not a NATS server: every attempt connects, gets no INFO, and fails.
    const attempts: Socket[] = [];
    const fake = createServer((socket) => {
      attempts.push(socket);
      socket.destroy();
    });
    await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
    const port = (fake.address() as AddressInfo).port;
    try {
      const broker = createNatsBroker({ url: `nats://127.0.0.1:${port}`, connectionOptions: { reconnectTimeWait: 20 } });
      const counted = broker.counts("never").then(
        () => undefined,
        (e: unknown) => e,
      );
      await waitFor(() => attempts.length >= 2, { timeout: 10_000, message: "the broker never tried to connect" });
      await broker.close();
      const error = await counted;
      expect(JobsError.isInstance(error) && error.code === "broker-closed").toBe(true);
      const afterClose = attempts.length;
      // Retrying every 20 ms, a client left running would connect again many times over 50 pauses.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(attempts.length - afterClose).toBeLessThanOrEqual(1);
    } finally {
      await new Promise((resolve) => fake.close(resolve));
    }
  });

  it("tries the first connection once with waitOnFirstConnect: false, failing with a connection error", async () => {
    const attempts: Socket[] = [];
    const fake = createServer((socket) => {
      attempts.push(socket);
      socket.destroy();
    });
    await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
    const port = (fake.address() as AddressInfo).port;
    try {
      const broker = createNatsBroker({ url: `nats://127.0.0.1:${port}`, connectionOptions: { waitOnFirstConnect: false } });
      const error = await broker.counts("never").then(
        () => undefined,
        (e: unknown) => e,
      );
      await broker.close();
      expect(JobsError.isInstance(error) && error.code === "broker-connection").toBe(true);
      expect(attempts).toHaveLength(1);
    } finally {
      await new Promise((resolve) => fake.close(resolve));
    }
  });
});

describe.skipIf(url === undefined)("nats adapter on a private server that is killed [needs JOBS_NATS_URL]", () => {
  let server: PrivateServer;
  beforeAll(async () => {
    server = await startPrivateNats();
  });
  afterAll(async () => {
    await server.stop();
  });

  it("reconnects after an outage longer than nats.js's default budget (10 tries × 2 s) and resumes consuming", async () => {
    const options = { url: `nats://127.0.0.1:${server.port}`, ...uniqueTopology("outage") };
    const producer = createNatsBroker(options);
    const consumer = createNatsBroker(options);
    const events: string[] = [];
    consumer.on("disconnected", () => events.push("disconnected"));
    consumer.on("reconnected", () => events.push("reconnected"));
    const got: Delivery[] = [];
    await consumer.consume("outage", { prefetch: 5, leaseMs: 10_000 }, (d) => {
      got.push(d);
      void d.ack().catch(() => {});
    });
    await server.kill("SIGKILL");
    await waitFor(() => events.includes("disconnected"), { timeout: 10_000 });
    // The fault lasts 22 s: at 500 ms between attempts, over 40 reconnect attempts fail.
    await new Promise((resolve) => setTimeout(resolve, 22_000));
    await server.start();
    await waitFor(() => events.includes("reconnected"), { timeout: 15_000, message: "gave up reconnecting" });
    await waitFor(async () => (await producer.publish("outage", [msg("after-outage", { id: "outage-1" })]))[0]?.ok === true, {
      timeout: 15_000,
    });
    await waitFor(() => got.some((d) => d.body === "after-outage"), { timeout: 10_000, message: "consumer did not resume" });
    await Promise.all([producer.close(), consumer.close()]);
  }, 90_000);

  it("loses no accepted job when the server is killed (-9) and restarted while jobs are enqueued and run", async () => {
    const options = { url: `nats://127.0.0.1:${server.port}`, ...uniqueTopology("midrun") };
    const producer = createNatsBroker(options);
    const consumer = createNatsBroker(options);
    const job = defineJob<{ n: number }>({ name: "midrun", queue: "midrun" });
    const ran = new Set<number>();
    const worker = createWorker({ broker: consumer, concurrency: 10, lease: "2s" }).handle(job, ({ n }) => {
      ran.add(n);
    });
    await worker.start();
    const client = createClient({ broker: producer });
    let disconnects = 0;
    producer.on("disconnected", () => disconnects++);
    const accepted: number[] = [];
    const total = 200;
    let killed: Promise<void> | undefined;
    for (let n = 0; n < total; n++) {
      if (n === total / 2) killed = server.restart("SIGKILL");
      // As an application would: retry retryable failures with the same id (the duplicate window stores it once).
      for (;;) {
        try {
          await client.enqueue(job, { n }, { id: `midrun-${n}` });
          accepted.push(n);
          break;
        } catch (error) {
          if (!(JobsError.isInstance(error) && error.retryable)) throw error;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    }
    await killed;
    await waitFor(() => accepted.every((n) => ran.has(n)), {
      timeout: 30_000,
      message: "accepted jobs were lost",
    });
    expect(accepted).toHaveLength(total);
    expect(disconnects).toBeGreaterThan(0);
    await worker.close();
    await Promise.all([producer.close(), consumer.close()]);
  }, 90_000);

  it("keeps holding a delayed job across a kill -9 of the server, delivering it once, not early, with deliveryCount 1", async () => {
    const options = { url: `nats://127.0.0.1:${server.port}`, ...uniqueTopology("killhold") };
    const producer = createNatsBroker(options);
    const consumer = createNatsBroker(options);
    const got: { at: number; d: Delivery }[] = [];
    await consumer.consume("held", { prefetch: 5, leaseMs: 10_000 }, (d) => {
      got.push({ at: performance.now(), d });
      void d.ack().catch(() => {});
    });
    const sentAt = performance.now();
    await producer.publish("held", [msg("survivor", { delayMs: 3_000 })]);
    // The scheduler holds it (nak with delay) before the crash.
    await waitFor(async () => (await producer.counts("held")).delayed === 1, { timeout: 5_000 });
    await server.restart("SIGKILL");
    // A restart forgets nak delays: the held job comes back within the delay consumer's AckWait (5 s) and is held again.
    await waitFor(() => got.length === 1, { timeout: 20_000, message: "the delayed job did not survive the restart" });
    expect(got[0]!.at - sentAt).toBeGreaterThanOrEqual(3_000 - 15);
    expect(got[0]!.d.body).toBe("survivor");
    expect(got[0]!.d.deliveryCount).toBe(1);
    await waitFor(async () => (await producer.counts("held")).active === 0, { timeout: 5_000 });
    expect(got).toHaveLength(1);
    await Promise.all([producer.close(), consumer.close()]);
  }, 40_000);
});
