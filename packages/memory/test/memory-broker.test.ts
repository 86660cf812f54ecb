import { BrokerClosedError, createClient, createWorker, defineJob, InvalidOptionsError, PayloadTooLargeError } from "@jobs/core";
import { type Delivery, encodeEnvelope, LeaseLostError, type OutgoingMessage } from "@jobs/core/adapter";
import { waitFor } from "@jobs/core/testing";
import { describe, expect, it } from "vitest";
import { createMemoryBroker, createMemoryServer, type MemoryBrokerOptions, memoryCapabilities } from "../src/index.js";
import { scope, uniqueQueue } from "./support.js";

function message(id: string, overrides: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return { id, body: JSON.stringify({ id }), priority: 2, delayMs: 0, dedupe: true, ...overrides };
}

/** Collects deliveries of a queue on a broker until the test ends. */
async function collect(broker: ReturnType<typeof createMemoryBroker>, queue: string, prefetch = 100, leaseMs = 60_000) {
  const deliveries: Delivery[] = [];
  const subscription = await broker.consume(queue, { prefetch, leaseMs }, (d) => deliveries.push(d));
  return { deliveries, subscription };
}

describe("memory broker: capabilities and options", () => {
  it("declares its capabilities", () => {
    expect(memoryCapabilities).toMatchObject({
      priority: "native",
      maxDelayMs: Number.POSITIVE_INFINITY,
      maxPayloadBytes: 1_048_576,
      dedupeWindowMs: 300_000,
      leaseExtension: true,
      durable: false,
      redeliverOnClose: true,
    });
    const t = scope();
    expect(t.broker().capabilities).toEqual(memoryCapabilities);
    expect(t.broker({ dedupeWindow: "2s", priority: "none", maxDelay: "1s", maxPayloadBytes: 10 }).capabilities).toMatchObject({
      dedupeWindowMs: 2_000,
      priority: "none",
      maxDelayMs: 1_000,
      maxPayloadBytes: 10,
    });
  });

  it.each([
    [{ maxPayloadBytes: 0 }, "maxPayloadBytes"],
    [{ maxPayloadBytes: 1.5 }, "maxPayloadBytes"],
    [{ priority: "sometimes" }, "priority"],
    [{ dedupeWindow: "forever" }, "dedupeWindow"],
    [{ maxDelay: -1 }, "maxDelay"],
    [{ server: {} }, "server"],
  ])("rejects %j naming %s", (options, field) => {
    try {
      createMemoryBroker(options as unknown as MemoryBrokerOptions);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidOptionsError);
      expect((error as InvalidOptionsError).field).toBe(field);
    }
  });
});

describe("memory broker: pause and resume", () => {
  it("stops deliveries while paused and resumes them, publishing all along", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("pause");
    const { deliveries } = await collect(broker, queue);
    broker.pause();
    await broker.publish(queue, [message("a"), message("b")]);
    // Bounded window: nothing may be delivered while paused.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(deliveries).toHaveLength(0);
    expect(await broker.counts(queue)).toMatchObject({ waiting: 2, active: 0 });
    broker.resume();
    await waitFor(() => deliveries.length === 2);
    expect(deliveries.map((d) => d.body)).toEqual([JSON.stringify({ id: "a" }), JSON.stringify({ id: "b" })]);
  });

  it("can start paused, and pausing one broker pauses its whole server", async () => {
    const t = scope();
    const server = createMemoryServer();
    const producer = t.broker({ server, paused: true });
    const consumer = t.broker({ server });
    const queue = uniqueQueue("start-paused");
    const { deliveries } = await collect(consumer, queue);
    await producer.publish(queue, [message("x")]);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(deliveries).toHaveLength(0);
    consumer.resume();
    await waitFor(() => deliveries.length === 1);
  });
});

describe("memory broker: drain", () => {
  it("resolves once a worker has run everything", async () => {
    const t = scope();
    const broker = t.broker();
    const job = defineJob<number>({ name: "d", queue: uniqueQueue("drain") });
    let done = 0;
    const worker = createWorker({ broker }).handle(job, async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      done++;
    });
    try {
      await worker.start();
      await createClient({ broker }).enqueueMany(Array.from({ length: 20 }, (_, i) => ({ job, payload: i })));
      await broker.drain({ timeout: "5s" });
      expect(done).toBe(20);
    } finally {
      await worker.close({ timeout: 0 });
    }
  });

  it("rejects after its timeout when nothing consumes", async () => {
    const t = scope();
    const broker = t.broker();
    await broker.publish(uniqueQueue("drain-stuck"), [message("x")]);
    await expect(broker.drain({ timeout: 50 })).rejects.toThrow("drain: still busy after 50 ms");
  });

  it("ignores delayed jobs due later than delayedWithin, and waits for those due sooner", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("drain-delayed");
    await broker.publish(queue, [message("later", { delayMs: 60_000 })]);
    await broker.drain({ timeout: 100 });
    await expect(broker.drain({ timeout: 50, delayedWithin: "2m" })).rejects.toThrow(/still busy/);
  });
});

describe("memory broker: dedupe", () => {
  it("drops a publish with a seen id inside the window, per queue", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("dedupe");
    expect(await broker.publish(queue, [message("a"), message("a"), message("b")])).toEqual([
      { ok: true, duplicate: false },
      { ok: true, duplicate: true },
      { ok: true, duplicate: false },
    ]);
    expect(await broker.publish(uniqueQueue("dedupe-other"), [message("a")])).toEqual([{ ok: true, duplicate: false }]);
    expect((await broker.counts(queue)).waiting).toBe(2);
  });

  it("never drops messages published with dedupe: false (retries, requeues)", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("no-dedupe");
    await broker.publish(queue, [message("a"), message("a", { dedupe: false }), message("a", { dedupe: false })]);
    expect((await broker.counts(queue)).waiting).toBe(3);
  });

  it("accepts the id again once the window has passed", async () => {
    const t = scope();
    const broker = t.broker({ dedupeWindow: 40 });
    const queue = uniqueQueue("dedupe-expiry");
    const first = Date.now();
    expect(await broker.publish(queue, [message("a")])).toEqual([{ ok: true, duplicate: false }]);
    expect(await broker.publish(queue, [message("a")])).toEqual([{ ok: true, duplicate: true }]);
    await waitFor(() => Date.now() > first + 45, { interval: 5 });
    expect(await broker.publish(queue, [message("a")])).toEqual([{ ok: true, duplicate: false }]);
    expect((await broker.counts(queue)).waiting).toBe(2);
  });

  it("shares the dedupe memory between brokers of one server", async () => {
    const t = scope();
    const server = createMemoryServer();
    const queue = uniqueQueue("dedupe-shared");
    await t.broker({ server }).publish(queue, [message("k")]);
    expect(await t.broker({ server }).publish(queue, [message("k")])).toEqual([{ ok: true, duplicate: true }]);
  });

  it("with a zero window, never deduplicates", async () => {
    const t = scope();
    const broker = t.broker({ dedupeWindow: 0 });
    const queue = uniqueQueue("dedupe-off");
    expect(await broker.publish(queue, [message("a"), message("a")])).toEqual([
      { ok: true, duplicate: false },
      { ok: true, duplicate: false },
    ]);
  });
});

describe("memory broker: publish", () => {
  it("refuses a body over maxPayloadBytes per message, storing the others", async () => {
    const t = scope();
    const broker = t.broker({ maxPayloadBytes: 100 });
    const queue = uniqueQueue("too-large");
    const outcomes = await broker.publish(queue, [message("ok"), message("big", { body: "é".repeat(60) }), message("ok2")]);
    expect(outcomes[0]).toEqual({ ok: true, duplicate: false });
    expect(outcomes[1]?.ok).toBe(false);
    if (outcomes[1]?.ok === false) {
      expect(outcomes[1].error).toBeInstanceOf(PayloadTooLargeError);
      expect((outcomes[1].error as PayloadTooLargeError).size).toBe(120);
    }
    expect(outcomes[2]).toEqual({ ok: true, duplicate: false });
    expect((await broker.counts(queue)).waiting).toBe(2);
  });

  it("delivers the highest priority level first, FIFO within a level", async () => {
    const t = scope();
    const broker = t.broker({ paused: true });
    const queue = uniqueQueue("levels");
    await broker.publish(queue, [
      message("l1", { priority: 1 }),
      message("l4a", { priority: 4 }),
      message("l2", { priority: 2 }),
      message("l4b", { priority: 4 }),
      message("l0", { priority: 0 }),
    ]);
    const { deliveries } = await collect(broker, queue);
    broker.resume();
    await waitFor(() => deliveries.length === 5);
    expect(deliveries.map((d) => (JSON.parse(d.body) as { id: string }).id)).toEqual(["l4a", "l4b", "l2", "l1", "l0"]);
  });

  it("holds a delayed message until it is due", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("delayed");
    const { deliveries } = await collect(broker, queue);
    const published = Date.now();
    await broker.publish(queue, [message("d", { delayMs: 80 })]);
    expect(await broker.counts(queue)).toMatchObject({ delayed: 1, waiting: 0 });
    await waitFor(() => deliveries.length === 1);
    expect(Date.now() - published).toBeGreaterThanOrEqual(79);
  });

  it("rejects publish, consume and inspection after close, and close is idempotent", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("closed");
    await broker.close();
    await broker.close();
    await expect(broker.publish(queue, [message("a")])).rejects.toBeInstanceOf(BrokerClosedError);
    await expect(broker.consume(queue, { prefetch: 1, leaseMs: 1_000 }, () => {})).rejects.toBeInstanceOf(BrokerClosedError);
    await expect(broker.counts(queue)).rejects.toBeInstanceOf(BrokerClosedError);
    await expect(broker.purge(queue)).rejects.toBeInstanceOf(BrokerClosedError);
  });

  it.each([
    [{ prefetch: 0, leaseMs: 1_000 }, "prefetch"],
    [{ prefetch: 1.5, leaseMs: 1_000 }, "prefetch"],
    [{ prefetch: 1, leaseMs: 0 }, "leaseMs"],
    [{ prefetch: 1, leaseMs: Number.POSITIVE_INFINITY }, "leaseMs"],
  ])("rejects consume options %o naming %s (a rejection, not a throw)", async (options, field) => {
    const t = scope();
    const broker = t.broker();
    let consuming: Promise<unknown> | undefined;
    expect(() => {
      consuming = broker.consume(uniqueQueue("consume-opts"), options, () => {});
    }).not.toThrow();
    const error = await consuming?.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as InvalidOptionsError).field).toBe(field);
  });
});

describe("memory broker: deliveries", () => {
  it("never hands a consumer more unsettled deliveries than its prefetch", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("prefetch");
    await broker.publish(
      queue,
      Array.from({ length: 10 }, (_, i) => message(`m${i}`)),
    );
    const { deliveries } = await collect(broker, queue, 3);
    await waitFor(() => deliveries.length === 3);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(deliveries).toHaveLength(3);
    await deliveries[0]?.ack();
    await waitFor(() => deliveries.length === 4);
    expect(await broker.counts(queue)).toMatchObject({ waiting: 6, active: 3 });
  });

  it("settles a delivery once; a second settlement rejects with LeaseLostError", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("settle-once");
    await broker.publish(queue, [message("a")]);
    const { deliveries } = await collect(broker, queue);
    await waitFor(() => deliveries.length === 1);
    const d = deliveries[0] as Delivery;
    await d.ack();
    await expect(d.ack()).rejects.toBeInstanceOf(LeaseLostError);
    await expect(d.retry(message("a"))).rejects.toBeInstanceOf(LeaseLostError);
    await expect(d.extendLease(1_000)).rejects.toBeInstanceOf(LeaseLostError);
  });

  it("a lease past its deadline is lost even before the reaper ran: settling rejects and the message comes back", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("expired");
    await broker.publish(queue, [message("a")]);
    const { deliveries } = await collect(broker, queue, 10, 100);
    await waitFor(() => deliveries.length === 1);
    // Block the event loop past the lease, so the reaper's timer cannot run first.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    await expect(deliveries[0]?.ack()).rejects.toBeInstanceOf(LeaseLostError);
    await waitFor(() => deliveries.length === 2);
    expect(deliveries[1]?.deliveryCount).toBe(2);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    await expect(deliveries[1]?.extendLease(1_000)).rejects.toBeInstanceOf(LeaseLostError);
  });

  it("retry replaces the message with the new body and resets its delivery count", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("retry");
    await broker.publish(queue, [message("a")]);
    const { deliveries } = await collect(broker, queue);
    await waitFor(() => deliveries.length === 1);
    await deliveries[0]?.retry(message("a", { body: "second", dedupe: false, delayMs: 20 }));
    expect(await broker.counts(queue)).toMatchObject({ delayed: 1, active: 0 });
    await waitFor(() => deliveries.length === 2);
    expect(deliveries[1]?.body).toBe("second");
    expect(deliveries[1]?.deliveryCount).toBe(1);
  });

  it("defer hands the same message back later without counting a delivery", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("defer");
    await broker.publish(queue, [message("a")]);
    const { deliveries } = await collect(broker, queue);
    await waitFor(() => deliveries.length === 1);
    await deliveries[0]?.defer(30);
    expect(await broker.counts(queue)).toMatchObject({ delayed: 1 });
    await waitFor(() => deliveries.length === 2);
    expect(deliveries[1]?.body).toBe(deliveries[0]?.body);
    expect(deliveries[1]?.deliveryCount).toBe(1);
  });

  it("survives a consumer that puts every delivery back synchronously (defer(0) inside onDelivery)", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("sync-defer");
    await broker.publish(queue, [message("a")]);
    let seen = 0;
    const subscription = await broker.consume(queue, { prefetch: 1, leaseMs: 60_000 }, (d) => {
      seen++;
      if (seen < 1_000) void d.defer(0);
    });
    // If the dispatch loop re-delivered synchronously, this timer would never get to run.
    await waitFor(() => seen >= 1_000, { timeout: 5_000 });
    await subscription.stop();
  });

  it("keeps dead letters with their record, oldest first, and removes them by key", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("dead");
    await broker.publish(queue, [message("a"), message("b")]);
    const { deliveries } = await collect(broker, queue);
    await waitFor(() => deliveries.length === 2);
    const error = { name: "Error", message: "bad" };
    await deliveries[0]?.deadLetter({ body: "A", reason: "max-attempts", error, failedAt: 1 });
    await deliveries[1]?.deadLetter({ body: "B", reason: "validation", error, failedAt: 2 });
    const dead = await broker.listDeadLetters(queue, { limit: 10 });
    expect(dead.map((d) => [d.body, d.reason, d.failedAt])).toEqual([
      ["A", "max-attempts", 1],
      ["B", "validation", 2],
    ]);
    expect(dead[0]?.key).not.toBe(dead[1]?.key);
    expect((await broker.listDeadLetters(queue, { limit: 1, offset: 1 })).map((d) => d.body)).toEqual(["B"]);
    expect(await broker.removeDeadLetters(queue, [dead[0]?.key ?? "", "no-such-key"])).toBe(1);
    expect((await broker.listDeadLetters(queue, { limit: 10 })).map((d) => d.body)).toEqual(["B"]);
    expect(await broker.counts(queue)).toMatchObject({ dead: 1, active: 0 });
  });
});

describe("memory broker: purge", () => {
  it("removes waiting, delayed and dead messages and leaves deliveries in flight settleable", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("purge");
    await broker.publish(queue, [message("inflight"), message("dead")]);
    const { deliveries, subscription } = await collect(broker, queue, 2);
    await waitFor(() => deliveries.length === 2);
    await subscription.stop();
    await deliveries[1]?.deadLetter({ body: "x", reason: "validation", error: { name: "E", message: "m" }, failedAt: 0 });
    await broker.publish(queue, [message("waiting"), message("delayed", { delayMs: 60_000 })]);
    expect(await broker.counts(queue)).toEqual({ waiting: 1, delayed: 1, active: 1, dead: 1 });
    await broker.purge(queue);
    expect(await broker.counts(queue)).toEqual({ waiting: 0, delayed: 0, active: 1, dead: 0 });
    await deliveries[0]?.ack();
    expect(await broker.counts(queue)).toEqual({ waiting: 0, delayed: 0, active: 0, dead: 0 });
  });

  it("leaves other queues alone", async () => {
    const t = scope();
    const broker = t.broker();
    const a = uniqueQueue("purge-a");
    const b = uniqueQueue("purge-b");
    await broker.publish(a, [message("1")]);
    await broker.publish(b, [message("2")]);
    await broker.purge(a);
    expect((await broker.counts(b)).waiting).toBe(1);
  });
});

describe("memory broker: leases", () => {
  it("sweeps an expired lease: the message comes back with a higher delivery count and the old delivery is void", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("lease");
    await broker.publish(queue, [message("a")]);
    const { deliveries } = await collect(broker, queue, 1, 50);
    await waitFor(() => deliveries.length === 1);
    const takenAt = Date.now();
    await waitFor(() => deliveries.length === 2, { timeout: 2_000 });
    expect(Date.now() - takenAt).toBeGreaterThanOrEqual(45);
    expect(deliveries[1]?.deliveryCount).toBe(2);
    expect(deliveries[1]?.body).toBe(deliveries[0]?.body);
    await expect(deliveries[0]?.ack()).rejects.toBeInstanceOf(LeaseLostError);
    await deliveries[1]?.ack();
    expect(await broker.counts(queue)).toEqual({ waiting: 0, delayed: 0, active: 0, dead: 0 });
  });

  it("extendLease keeps the delivery past its original lease", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("extend");
    await broker.publish(queue, [message("a")]);
    const { deliveries } = await collect(broker, queue, 1, 60);
    await waitFor(() => deliveries.length === 1);
    const d = deliveries[0] as Delivery;
    const started = Date.now();
    await waitFor(
      async () => {
        await d.extendLease(60);
        return Date.now() - started > 200;
      },
      { interval: 20 },
    );
    expect(deliveries).toHaveLength(1);
    await d.ack();
  });

  it("hands a closing broker's unsettled deliveries back to the queue, to another broker of the server", async () => {
    const t = scope();
    const server = createMemoryServer();
    const first = t.broker({ server });
    const second = t.broker({ server });
    const queue = uniqueQueue("close-release");
    await first.publish(queue, [message("a")]);
    const held = await collect(first, queue);
    await waitFor(() => held.deliveries.length === 1);
    const other = await collect(second, queue);
    await first.close();
    await expect(held.deliveries[0]?.ack()).rejects.toBeInstanceOf(BrokerClosedError);
    await waitFor(() => other.deliveries.length === 1);
    expect(other.deliveries[0]?.deliveryCount).toBe(2);
  });

  it("a real envelope survives a lease expiry byte for byte", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("lease-envelope");
    const now = Date.now();
    const body = encodeEnvelope({
      v: 1,
      id: "job-1",
      name: "n",
      queue,
      payload: { é: "✓" },
      attempt: 1,
      maxAttempts: 1,
      priority: "normal",
      enqueuedAt: now,
      runAt: now,
      timeout: 1_000,
    });
    await broker.publish(queue, [message("job-1", { body })]);
    const { deliveries } = await collect(broker, queue, 1, 30);
    await waitFor(() => deliveries.length === 2, { timeout: 2_000 });
    expect(deliveries[1]?.body).toBe(body);
  });
});
