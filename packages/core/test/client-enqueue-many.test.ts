import { describe, expect, it, vi } from "vitest";
import {
  BrokerClosedError,
  BulkEnqueueError,
  createClient,
  defineJob,
  InvalidOptionsError,
  JobsError,
  JobValidationError,
} from "../src/index.js";
import { fixture, invalidField, rejection, uniqueQueue } from "./support.js";

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
    const { broker } = fixture("client-limit");
    expect(() => createClient({ broker, maxPayloadBytes: 0 })).toThrow(InvalidOptionsError);
    expect(() => createClient({ broker, maxPayloadBytes: Number.NaN })).toThrow(/maxPayloadBytes/);
  });
});

describe("client.enqueueMany", () => {
  it("publishes one batch per queue and returns the results in the order given", async () => {
    const { broker, queue: qa, client } = fixture("many-a");
    const qb = uniqueQueue("many-b");
    const a = defineJob<number>({ name: "a", queue: qa });
    const b = defineJob<string>({ name: "b", queue: qb });
    const publish = vi.spyOn(broker, "publish");
    const results = await client.enqueueMany([
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
    const { broker, queue, client } = fixture("many-invalid");
    const job = defineJob<unknown>({ name: "j", queue });
    const publish = vi.spyOn(broker, "publish");
    const error = await rejection(
      client.enqueueMany([
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
    const { broker, queue, client } = fixture("many-closed");
    const job = defineJob<number>({ name: "j", queue });
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
    const { broker, queue, client } = fixture("many-dupes");
    const job = defineJob<number>({ name: "j", queue });
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
    const { queue, client } = fixture("many-events");
    const job = defineJob<number>({ name: "j", queue });
    const names: string[] = [];
    client.on("job.enqueued", (e) => names.push(e.job.id));
    const results = await client.enqueueMany([
      { job, payload: 1 },
      { job, payload: 2 },
    ]);
    expect(names.sort()).toEqual(results.map((r) => r.id).sort());
  });

  it("resolves to [] for no items without publishing, and rejects a non-array", async () => {
    const { broker, client } = fixture("many-none");
    const publish = vi.spyOn(broker, "publish");
    expect(await client.enqueueMany([])).toEqual([]);
    expect(publish).not.toHaveBeenCalled();
    expect(await invalidField(client.enqueueMany("nope" as unknown as []))).toBe("items");
  });

  it("rejects items that are not items as invalid, per item", async () => {
    const { queue, client } = fixture("many-bad-items");
    const job = defineJob<number>({ name: "j", queue });
    const error = (await rejection(
      client.enqueueMany([{ job, payload: 1 }, null as unknown as { job: typeof job; payload: number }]),
    )) as BulkEnqueueError;
    expect(error.outcomes.map((o) => o.status)).toEqual(["not-sent", "rejected"]);
    expect(JobsError.isInstance(error.outcomes[1]?.status === "rejected" ? error.outcomes[1].error : undefined)).toBe(true);
  });
});
