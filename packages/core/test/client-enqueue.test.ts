import { describe, expect, it } from "vitest";
import {
  BrokerClosedError,
  createAdmin,
  defineJob,
  type EnqueueOptions,
  JobValidationError,
  PayloadTooLargeError,
  UnsupportedError,
} from "../src/index.js";
import { fixture, invalidField, peek, rejection, uniqueQueue } from "./support.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("client.enqueue", () => {
  it("resolves with id, name, queue, runAt and priority once the broker holds the job", async () => {
    const { broker, queue, client } = fixture("enqueue");
    const job = defineJob<{ to: string }>({ name: "email.send", queue, priority: "low" });
    const before = Date.now();
    const result = await client.enqueue(job, { to: "ada@example.com" });
    const after = Date.now();
    expect(result.id).toMatch(UUID);
    expect(result).toMatchObject({ name: "email.send", queue, priority: "low", duplicate: false });
    expect(result.runAt).toBeGreaterThanOrEqual(before);
    expect(result.runAt).toBeLessThanOrEqual(after);
    expect(await broker.counts(queue)).toEqual({ waiting: 1, delayed: 0, active: 0, dead: 0 });
  });

  it("gives every job its own id", async () => {
    const { queue, client } = fixture("ids");
    const job = defineJob<number>({ name: "n", queue });
    const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => client.enqueue(job, i).then((r) => r.id)));
    expect(new Set(ids).size).toBe(50);
  });

  it("stores a versioned envelope with the per-call overrides", async () => {
    const { broker, queue, client } = fixture("envelope");
    const job = defineJob<{ n: number }>({ name: "calc", queue, maxAttempts: 5, timeout: "1m" });
    const trace = { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" };
    const result = await client.enqueue(
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
    const { broker, queue, client } = fixture("defaults");
    await client.enqueue(defineJob({ name: "d", queue, maxAttempts: 7, timeout: 1234, priority: "high" }), null);
    expect(await peek(broker, queue)).toMatchObject({ maxAttempts: 7, timeout: 1234, priority: "high", payload: null });
  });

  it("holds a delayed job until its runAt", async () => {
    const { broker, queue, client } = fixture("delay");
    const job = defineJob({ name: "later", queue });
    const before = Date.now();
    const result = await client.enqueue(job, {}, { delay: "1h" });
    expect(result.runAt).toBeGreaterThanOrEqual(before + 3_600_000);
    expect(result.runAt).toBeLessThanOrEqual(Date.now() + 3_600_000);
    expect(await broker.counts(queue)).toMatchObject({ waiting: 0, delayed: 1 });
  });

  it("accepts runAt as a Date or as ms since the epoch", async () => {
    const { broker, queue, client } = fixture("runat");
    const job = defineJob({ name: "at", queue });
    const at = Date.now() + 60_000;
    expect((await client.enqueue(job, {}, { runAt: new Date(at) })).runAt).toBe(at);
    expect((await client.enqueue(job, {}, { runAt: at + 0.2 })).runAt).toBe(at + 1);
    expect(await broker.counts(queue)).toMatchObject({ waiting: 0, delayed: 2 });
  });

  it("clamps a runAt in the past to now", async () => {
    const { broker, queue, client } = fixture("past");
    const before = Date.now();
    const result = await client.enqueue(defineJob({ name: "p", queue }), {}, { runAt: new Date("2001-01-01T00:00:00Z") });
    expect(result.runAt).toBeGreaterThanOrEqual(before);
    expect(result.runAt).toBeLessThanOrEqual(Date.now());
    expect(await broker.counts(queue)).toMatchObject({ waiting: 1, delayed: 0 });
  });

  it("rejects delay together with runAt, and sends nothing", async () => {
    const { broker, queue, client } = fixture("exclusive");
    const field = await invalidField(client.enqueue(defineJob({ name: "x", queue }), {}, { delay: "1s", runAt: Date.now() }));
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
    const { broker, queue, client } = fixture("opts");
    expect(await invalidField(client.enqueue(defineJob({ name: "x", queue }), {}, options as EnqueueOptions))).toBe(field);
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
    ["a 129-character key", { ["k".repeat(129)]: 1 }, `metadata.${"k".repeat(32)}`],
    ["65 keys", Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i])), "metadata"],
  ])("rejects metadata that is %s", async (_what, metadata, field) => {
    const { queue, client } = fixture("meta");
    const job = defineJob({ name: "m", queue });
    expect(await invalidField(client.enqueue(job, {}, { metadata } as EnqueueOptions))).toBe(field);
  });

  it("accepts a metadata key named constructor (values are primitives: nothing to pollute)", async () => {
    const { queue, client } = fixture("meta-ctor");
    const handle = await client.enqueue(defineJob({ name: "m", queue }), {}, { metadata: { constructor: "x" } });
    expect(handle.id).toBeTruthy();
  });

  it("accepts 64 metadata keys of strings, finite numbers and booleans", async () => {
    const { broker, queue, client } = fixture("meta-ok");
    const metadata = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, i % 3 === 0 ? "s" : i % 3 === 1 ? i : true]));
    await client.enqueue(defineJob({ name: "m", queue }), {}, { metadata });
    expect((await peek(broker, queue)).meta).toEqual(metadata);
  });

  it("deduplicates a caller-chosen id: the second enqueue is a no-op reported as duplicate", async () => {
    const { broker, queue, client } = fixture("dedupe");
    const job = defineJob<{ order: number }>({ name: "order.ship", queue });
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
    const { queue, client } = fixture("scope-a");
    const a = defineJob({ name: "a", queue });
    const b = defineJob({ name: "b", queue: uniqueQueue("scope-b") });
    expect((await client.enqueue(a, {}, { id: "same" })).duplicate).toBe(false);
    expect((await client.enqueue(b, {}, { id: "same" })).duplicate).toBe(false);
  });

  it("refuses a caller-chosen id on a broker without dedupe", async () => {
    const { broker, queue, client } = fixture("nodedupe", { dedupeWindow: 0 });
    const error = await rejection(client.enqueue(defineJob({ name: "x", queue }), {}, { id: "abc" }));
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
    const { broker, queue, client } = fixture("json");
    const error = await rejection(client.enqueue(defineJob({ name: "j", queue }), payload));
    expect(error).toBeInstanceOf(JobValidationError);
    expect((error as JobValidationError).issues[0]?.path).toEqual(path);
    expect((await broker.counts(queue)).waiting).toBe(0);
  });

  it("rejects an encoded job over the broker's limit with PayloadTooLargeError before sending", async () => {
    const { broker, queue, client } = fixture("large", { maxPayloadBytes: 1_000 });
    const job = defineJob<string>({ name: "big", queue });
    const error = await rejection(client.enqueue(job, "é".repeat(400)));
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect((error as PayloadTooLargeError).limit).toBe(1_000);
    expect((error as PayloadTooLargeError).size).toBeGreaterThan(1_000);
    expect((await broker.counts(queue)).waiting).toBe(0);
    await client.enqueue(job, "small");
    expect((await broker.counts(queue)).waiting).toBe(1);
  });

  it("applies a client limit lower than the broker's, and never a higher one", async () => {
    const { broker, queue, scope } = fixture("limit", { maxPayloadBytes: 2_000 });
    const job = defineJob<string>({ name: "big", queue });
    const low = await rejection(scope.client(broker, 500).enqueue(job, "x".repeat(600)));
    expect((low as PayloadTooLargeError).limit).toBe(500);
    const high = await rejection(scope.client(broker, 1_000_000).enqueue(job, "x".repeat(3_000)));
    expect((high as PayloadTooLargeError).limit).toBe(2_000);
  });

  it("rejects something that is not a job definition", async () => {
    const { client } = fixture("not-a-job");
    const field = await invalidField(client.enqueue({ name: "fake" } as unknown as ReturnType<typeof defineJob>, {}));
    expect(field).toBe("job");
  });

  it("rejects with BrokerClosedError after the broker closed", async () => {
    const { broker, queue, client } = fixture("closed");
    await broker.close();
    const error = await rejection(client.enqueue(defineJob({ name: "c", queue }), {}));
    expect(error).toBeInstanceOf(BrokerClosedError);
  });

  it("emits job.enqueued with the job's info and metadata but never its payload", async () => {
    const { queue, client } = fixture("events");
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
    const { broker, queue, client } = fixture("emulated", { priority: "none" });
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
