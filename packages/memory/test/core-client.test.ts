import {
  BrokerClosedError,
  BulkEnqueueError,
  createAdmin,
  createClient,
  defineJob,
  type EnqueueOptions,
  InvalidOptionsError,
  JobsError,
  JobValidationError,
  PayloadTooLargeError,
  UnsupportedError,
} from "@jobs/core";
import { describe, expect, it, vi } from "vitest";
import { peek, scope, uniqueQueue } from "./core-support.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the promise to reject");
}

async function invalidField(promise: Promise<unknown>): Promise<string> {
  const error = await rejection(promise);
  expect(error).toBeInstanceOf(InvalidOptionsError);
  return (error as InvalidOptionsError).field;
}

describe("client.enqueue", () => {
  it("resolves with id, name, queue, runAt and priority once the broker holds the job", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("enqueue");
    const job = defineJob<{ to: string }>({ name: "email.send", queue, priority: "low" });
    const before = Date.now();
    const result = await t.client(broker).enqueue(job, { to: "ada@example.com" });
    const after = Date.now();
    expect(result.id).toMatch(UUID);
    expect(result).toMatchObject({ name: "email.send", queue, priority: "low", duplicate: false });
    expect(result.runAt).toBeGreaterThanOrEqual(before);
    expect(result.runAt).toBeLessThanOrEqual(after);
    expect(await broker.counts(queue)).toEqual({ waiting: 1, delayed: 0, active: 0, dead: 0 });
  });

  it("gives every job its own id", async () => {
    const t = scope();
    const broker = t.broker();
    const job = defineJob<number>({ name: "n", queue: uniqueQueue("ids") });
    const client = t.client(broker);
    const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => client.enqueue(job, i).then((r) => r.id)));
    expect(new Set(ids).size).toBe(50);
  });

  it("stores a versioned envelope with the per-call overrides", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("envelope");
    const job = defineJob<{ n: number }>({ name: "calc", queue, maxAttempts: 5, timeout: "1m" });
    const trace = { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" };
    const result = await t
      .client(broker)
      .enqueue(
        job,
        { n: 1 },
        { priority: "critical", maxAttempts: 2, timeout: "10s", metadata: { tenant: "acme", n: 1, beta: true }, trace },
      );
    const envelope = await peek(broker, queue);
    expect(envelope).toEqual({
      v: 1,
      id: result.id,
      name: "calc",
      queue,
      payload: { n: 1 },
      attempt: 1,
      maxAttempts: 2,
      priority: "critical",
      enqueuedAt: envelope.enqueuedAt,
      runAt: result.runAt,
      timeout: 10_000,
      trace,
      meta: { tenant: "acme", n: 1, beta: true },
    });
    expect(envelope.enqueuedAt).toBe(result.runAt);
  });

  it("uses the definition's maxAttempts, timeout and priority by default", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("defaults");
    await t.client(broker).enqueue(defineJob({ name: "d", queue, maxAttempts: 7, timeout: 1234, priority: "high" }), null);
    expect(await peek(broker, queue)).toMatchObject({ maxAttempts: 7, timeout: 1234, priority: "high", payload: null });
  });

  it("holds a delayed job until its runAt", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("delay");
    const job = defineJob({ name: "later", queue });
    const before = Date.now();
    const result = await t.client(broker).enqueue(job, {}, { delay: "1h" });
    expect(result.runAt).toBeGreaterThanOrEqual(before + 3_600_000);
    expect(result.runAt).toBeLessThanOrEqual(Date.now() + 3_600_000);
    expect(await broker.counts(queue)).toMatchObject({ waiting: 0, delayed: 1 });
  });

  it("accepts runAt as a Date or as ms since the epoch", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("runat");
    const job = defineJob({ name: "at", queue });
    const client = t.client(broker);
    const at = Date.now() + 60_000;
    expect((await client.enqueue(job, {}, { runAt: new Date(at) })).runAt).toBe(at);
    expect((await client.enqueue(job, {}, { runAt: at + 0.2 })).runAt).toBe(at + 1);
    expect(await broker.counts(queue)).toMatchObject({ waiting: 0, delayed: 2 });
  });

  it("clamps a runAt in the past to now", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("past");
    const before = Date.now();
    const result = await t.client(broker).enqueue(defineJob({ name: "p", queue }), {}, { runAt: new Date("2001-01-01T00:00:00Z") });
    expect(result.runAt).toBeGreaterThanOrEqual(before);
    expect(result.runAt).toBeLessThanOrEqual(Date.now());
    expect(await broker.counts(queue)).toMatchObject({ waiting: 1, delayed: 0 });
  });

  it("rejects delay together with runAt, and sends nothing", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("exclusive");
    const field = await invalidField(t.client(broker).enqueue(defineJob({ name: "x", queue }), {}, { delay: "1s", runAt: Date.now() }));
    expect(field).toBe("delay");
    expect(await broker.counts(queue)).toEqual({ waiting: 0, delayed: 0, active: 0, dead: 0 });
  });

  it.each([
    [{ runAt: Number.NaN }, "runAt"],
    [{ runAt: new Date("not a date") }, "runAt"],
    [{ runAt: -1 }, "runAt"],
    [{ runAt: "tomorrow" }, "runAt"],
    [{ delay: "soon" }, "delay"],
    [{ delay: -5 }, "delay"],
    [{ priority: "urgent" }, "priority"],
    [{ maxAttempts: 0 }, "maxAttempts"],
    [{ maxAttempts: 2.5 }, "maxAttempts"],
    [{ timeout: 0 }, "timeout"],
    [{ timeout: "30d" }, "timeout"],
    [{ id: "" }, "id"],
    [{ id: "has space" }, "id"],
    [{ id: "i".repeat(129) }, "id"],
    [{ trace: { tracestate: "x" } }, "trace"],
    [{ trace: "00-abc" }, "trace"],
  ])("rejects the option %j naming %s", async (options, field) => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("opts");
    expect(await invalidField(t.client(broker).enqueue(defineJob({ name: "x", queue }), {}, options as EnqueueOptions))).toBe(field);
    expect((await broker.counts(queue)).waiting).toBe(0);
  });

  it.each([
    ["an array", [], "metadata"],
    ["a string", "x", "metadata"],
    ["a class instance", new Map(), "metadata"],
    ["a nested object", { a: { b: 1 } }, "metadata.a"],
    ["an array value", { tags: ["a"] }, "metadata.tags"],
    ["null value", { a: null }, "metadata.a"],
    ["NaN", { n: Number.NaN }, "metadata.n"],
    ["Infinity", { n: Number.POSITIVE_INFINITY }, "metadata.n"],
    ["a __proto__ key", JSON.parse('{"__proto__":"x"}'), "metadata.__proto__"],
    ["a constructor key", { constructor: "x" }, "metadata.constructor"],
    ["a 129-character key", { ["k".repeat(129)]: 1 }, `metadata.${"k".repeat(32)}`],
    ["65 keys", Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i])), "metadata"],
  ])("rejects metadata that is %s", async (_what, metadata, field) => {
    const t = scope();
    const broker = t.broker();
    const job = defineJob({ name: "m", queue: uniqueQueue("meta") });
    expect(await invalidField(t.client(broker).enqueue(job, {}, { metadata } as EnqueueOptions))).toBe(field);
  });

  it("accepts 64 metadata keys of strings, finite numbers and booleans", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("meta-ok");
    const metadata = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, i % 3 === 0 ? "s" : i % 3 === 1 ? i : true]));
    await t.client(broker).enqueue(defineJob({ name: "m", queue }), {}, { metadata });
    expect((await peek(broker, queue)).meta).toEqual(metadata);
  });

  it("deduplicates a caller-chosen id: the second enqueue is a no-op reported as duplicate", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("dedupe");
    const job = defineJob<{ order: number }>({ name: "order.ship", queue });
    const client = t.client(broker);
    const enqueued: boolean[] = [];
    client.on("job.enqueued", (e) => enqueued.push(e.duplicate));
    const first = await client.enqueue(job, { order: 1 }, { id: "order-1" });
    const second = await client.enqueue(job, { order: 1 }, { id: "order-1" });
    expect(first).toMatchObject({ id: "order-1", duplicate: false });
    expect(second).toMatchObject({ id: "order-1", duplicate: true });
    expect(enqueued).toEqual([false, true]);
    expect(await broker.counts(queue)).toMatchObject({ waiting: 1 });
    const other = await client.enqueue(job, { order: 2 }, { id: "order-2" });
    expect(other.duplicate).toBe(false);
    expect(await broker.counts(queue)).toMatchObject({ waiting: 2 });
  });

  it("scopes dedupe ids to their queue", async () => {
    const t = scope();
    const broker = t.broker();
    const client = t.client(broker);
    const a = defineJob({ name: "a", queue: uniqueQueue("scope-a") });
    const b = defineJob({ name: "b", queue: uniqueQueue("scope-b") });
    expect((await client.enqueue(a, {}, { id: "same" })).duplicate).toBe(false);
    expect((await client.enqueue(b, {}, { id: "same" })).duplicate).toBe(false);
  });

  it("refuses a caller-chosen id on a broker without dedupe", async () => {
    const t = scope();
    const broker = t.broker({ dedupeWindow: 0 });
    const queue = uniqueQueue("nodedupe");
    const error = await rejection(t.client(broker).enqueue(defineJob({ name: "x", queue }), {}, { id: "abc" }));
    expect(error).toBeInstanceOf(UnsupportedError);
    expect((error as UnsupportedError).code).toBe("unsupported");
    expect((error as Error).message).toContain("[memory]");
    expect((await broker.counts(queue)).waiting).toBe(0);
  });

  it.each([
    ["a Date", { when: new Date() }, ["when"]],
    ["a Map", { m: new Map() }, ["m"]],
    ["a class instance", { u: new URL("https://example.com") }, ["u"]],
    ["a function", { f: () => 1 }, ["f"]],
    ["an undefined value", { a: undefined }, ["a"]],
    ["a BigInt", { n: [1n] }, ["n", 0]],
    ["NaN", { x: { y: Number.NaN } }, ["x", "y"]],
    [
      "a cycle",
      (() => {
        const o: Record<string, unknown> = {};
        o.me = o;
        return o;
      })(),
      ["me"],
    ],
    ["65 levels of nesting", Array.from({ length: 64 }).reduce<unknown>((inner) => [inner], []), new Array(64).fill(0)],
  ])("rejects a payload with %s (JobValidationError with the issue path), sending nothing", async (_what, payload, path) => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("json");
    const error = await rejection(t.client(broker).enqueue(defineJob({ name: "j", queue }), payload));
    expect(error).toBeInstanceOf(JobValidationError);
    expect((error as JobValidationError).issues[0]?.path).toEqual(path);
    expect((await broker.counts(queue)).waiting).toBe(0);
  });

  it("rejects an encoded job over the broker's limit with PayloadTooLargeError before sending", async () => {
    const t = scope();
    const broker = t.broker({ maxPayloadBytes: 1_000 });
    const queue = uniqueQueue("large");
    const job = defineJob<string>({ name: "big", queue });
    const client = t.client(broker);
    const error = await rejection(client.enqueue(job, "é".repeat(400)));
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect((error as PayloadTooLargeError).limit).toBe(1_000);
    expect((error as PayloadTooLargeError).size).toBeGreaterThan(1_000);
    expect((await broker.counts(queue)).waiting).toBe(0);
    await client.enqueue(job, "small");
    expect((await broker.counts(queue)).waiting).toBe(1);
  });

  it("applies a client limit lower than the broker's, and never a higher one", async () => {
    const t = scope();
    const broker = t.broker({ maxPayloadBytes: 2_000 });
    const job = defineJob<string>({ name: "big", queue: uniqueQueue("limit") });
    const low = await rejection(t.client(broker, 500).enqueue(job, "x".repeat(600)));
    expect((low as PayloadTooLargeError).limit).toBe(500);
    const high = await rejection(t.client(broker, 1_000_000).enqueue(job, "x".repeat(3_000)));
    expect((high as PayloadTooLargeError).limit).toBe(2_000);
  });

  it("rejects something that is not a job definition", async () => {
    const t = scope();
    const client = t.client(t.broker());
    const field = await invalidField(client.enqueue({ name: "fake" } as unknown as ReturnType<typeof defineJob>, {}));
    expect(field).toBe("job");
  });

  it("rejects with BrokerClosedError after the broker closed", async () => {
    const t = scope();
    const broker = t.broker();
    const client = t.client(broker);
    await broker.close();
    const error = await rejection(client.enqueue(defineJob({ name: "c", queue: uniqueQueue("closed") }), {}));
    expect(error).toBeInstanceOf(BrokerClosedError);
  });

  it("emits job.enqueued with the job's info and metadata but never its payload", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("events");
    const client = t.client(broker);
    const events: unknown[] = [];
    const off = client.on("job.enqueued", (e) => events.push(e));
    const result = await client.enqueue(
      defineJob<{ secret: string }>({ name: "ev", queue }),
      { secret: "s3cr3t" },
      { metadata: { k: "v" } },
    );
    off();
    await client.enqueue(defineJob({ name: "ev2", queue }), {});
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      duplicate: false,
      job: { id: result.id, name: "ev", queue, attempt: 1, maxAttempts: 25, priority: "normal", metadata: { k: "v" } },
    });
    expect((events[0] as { durationMs: number }).durationMs).toBeGreaterThanOrEqual(0);
    expect(JSON.stringify(events[0])).not.toContain("s3cr3t");
  });

  it("routes each priority to its own physical queue when the broker has no native priority", async () => {
    const t = scope();
    const broker = t.broker({ priority: "none" });
    const queue = uniqueQueue("emulated");
    const client = t.client(broker);
    const job = defineJob({ name: "p", queue });
    await client.enqueue(job, {}, { priority: "critical" });
    await client.enqueue(job, {}, { priority: "trivial" });
    await client.enqueue(job, {});
    expect((await broker.counts(`${queue}__p4`)).waiting).toBe(1);
    expect((await broker.counts(`${queue}__p2`)).waiting).toBe(1);
    expect((await broker.counts(`${queue}__p0`)).waiting).toBe(1);
    expect((await broker.counts(queue)).waiting).toBe(0);
    expect((await createAdmin({ broker }).counts(queue)).waiting).toBe(3);
  });
});

describe("createClient", () => {
  it("needs a broker", () => {
    for (const options of [undefined, null, {}, { broker: {} }]) {
      try {
        createClient(options as unknown as Parameters<typeof createClient>[0]);
        expect.unreachable();
      } catch (error) {
        expect((error as InvalidOptionsError).field).toBe("broker");
      }
    }
  });

  it("rejects a non-positive maxPayloadBytes", () => {
    const t = scope();
    const broker = t.broker();
    expect(() => createClient({ broker, maxPayloadBytes: 0 })).toThrow(InvalidOptionsError);
    expect(() => createClient({ broker, maxPayloadBytes: Number.NaN })).toThrow(/maxPayloadBytes/);
  });
});

describe("client.enqueueMany", () => {
  it("publishes one batch per queue and returns the results in the order given", async () => {
    const t = scope();
    const broker = t.broker();
    const qa = uniqueQueue("many-a");
    const qb = uniqueQueue("many-b");
    const a = defineJob<number>({ name: "a", queue: qa });
    const b = defineJob<string>({ name: "b", queue: qb });
    const publish = vi.spyOn(broker, "publish");
    const results = await t.client(broker).enqueueMany([
      { job: a, payload: 1 },
      { job: b, payload: "x" },
      { job: a, payload: 2, options: { priority: "high" } },
      { job: b, payload: "y", options: { delay: "1h" } },
      { job: a, payload: 3 },
    ]);
    expect(results.map((r) => [r.name, r.queue])).toEqual([
      ["a", qa],
      ["b", qb],
      ["a", qa],
      ["b", qb],
      ["a", qa],
    ]);
    expect(results[2]?.priority).toBe("high");
    expect(new Set(results.map((r) => r.id)).size).toBe(5);
    expect(publish).toHaveBeenCalledTimes(2);
    const sizes = Object.fromEntries(publish.mock.calls.map(([queue, messages]) => [queue, messages.length]));
    expect(sizes).toEqual({ [qa]: 3, [qb]: 2 });
    expect(await broker.counts(qa)).toMatchObject({ waiting: 3 });
    expect(await broker.counts(qb)).toMatchObject({ waiting: 1, delayed: 1 });
  });

  it("validates every item first and sends nothing when one is invalid", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("many-invalid");
    const job = defineJob<unknown>({ name: "j", queue });
    const publish = vi.spyOn(broker, "publish");
    const error = await rejection(
      t.client(broker).enqueueMany([
        { job, payload: 1 },
        { job, payload: { when: new Date() } },
        { job, payload: 3, options: { priority: "urgent" as "high" } },
        { job, payload: 4 },
      ]),
    );
    expect(error).toBeInstanceOf(BulkEnqueueError);
    const bulk = error as BulkEnqueueError;
    expect(bulk.code).toBe("bulk-enqueue");
    expect(bulk.message).toContain("2 of 4");
    expect(bulk.outcomes.map((o) => o.status)).toEqual(["not-sent", "rejected", "rejected", "not-sent"]);
    const rejected = bulk.outcomes.filter((o) => o.status === "rejected").map((o) => o.error);
    expect(rejected[0]).toBeInstanceOf(JobValidationError);
    expect(rejected[1]).toBeInstanceOf(InvalidOptionsError);
    expect(publish).not.toHaveBeenCalled();
    expect((await broker.counts(queue)).waiting).toBe(0);
  });

  it("reports per-item outcomes when the broker refuses a batch", async () => {
    const t = scope();
    const broker = t.broker();
    const job = defineJob<number>({ name: "j", queue: uniqueQueue("many-closed") });
    const client = t.client(broker);
    await broker.close();
    const error = (await rejection(
      client.enqueueMany([
        { job, payload: 1 },
        { job, payload: 2 },
      ]),
    )) as BulkEnqueueError;
    expect(error).toBeInstanceOf(BulkEnqueueError);
    expect(error.message).toContain("2 of 2");
    expect(error.outcomes).toHaveLength(2);
    for (const outcome of error.outcomes) {
      expect(outcome.status).toBe("rejected");
      if (outcome.status === "rejected") expect(outcome.error).toBeInstanceOf(BrokerClosedError);
    }
  });

  it("reports duplicates inside one batch and across batches", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("many-dupes");
    const job = defineJob<number>({ name: "j", queue });
    const client = t.client(broker);
    const results = await client.enqueueMany([
      { job, payload: 1, options: { id: "k1" } },
      { job, payload: 1, options: { id: "k1" } },
      { job, payload: 2, options: { id: "k2" } },
    ]);
    expect(results.map((r) => [r.id, r.duplicate])).toEqual([
      ["k1", false],
      ["k1", true],
      ["k2", false],
    ]);
    expect((await broker.counts(queue)).waiting).toBe(2);
    const again = await client.enqueueMany([{ job, payload: 2, options: { id: "k2" } }]);
    expect(again[0]?.duplicate).toBe(true);
  });

  it("emits one job.enqueued per accepted item", async () => {
    const t = scope();
    const broker = t.broker();
    const job = defineJob<number>({ name: "j", queue: uniqueQueue("many-events") });
    const client = t.client(broker);
    const names: string[] = [];
    client.on("job.enqueued", (e) => names.push(e.job.id));
    const results = await client.enqueueMany([
      { job, payload: 1 },
      { job, payload: 2 },
    ]);
    expect(names.sort()).toEqual(results.map((r) => r.id).sort());
  });

  it("resolves to [] for no items without publishing, and rejects a non-array", async () => {
    const t = scope();
    const broker = t.broker();
    const publish = vi.spyOn(broker, "publish");
    const client = t.client(broker);
    expect(await client.enqueueMany([])).toEqual([]);
    expect(publish).not.toHaveBeenCalled();
    expect(await invalidField(client.enqueueMany("nope" as unknown as []))).toBe("items");
  });

  it("rejects items that are not items as invalid, per item", async () => {
    const t = scope();
    const broker = t.broker();
    const job = defineJob<number>({ name: "j", queue: uniqueQueue("many-bad-items") });
    const error = (await rejection(
      t.client(broker).enqueueMany([{ job, payload: 1 }, null as unknown as { job: typeof job; payload: number }]),
    )) as BulkEnqueueError;
    expect(error.outcomes.map((o) => o.status)).toEqual(["not-sent", "rejected"]);
    expect(JobsError.isInstance(error.outcomes[1]?.status === "rejected" ? error.outcomes[1].error : undefined)).toBe(true);
  });
});
