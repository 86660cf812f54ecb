import { describe, expect, it } from "vitest";
import { defineJob } from "../src/index.js";
import { waitForEvent } from "../src/testing/index.js";
import { deadLetters, deliverAndDie, fixture, publishRaw } from "./support.js";

describe("worker: messages it cannot run", () => {
  it("dead-letters a job nobody handles as unknown-job and keeps running", async () => {
    const f = fixture("unknown");
    const known = f.job<null>("known");
    const stranger = f.job<null>("stranger");
    let ran = 0;
    const worker = f.worker().handle(known, () => {
      ran++;
    });
    await worker.start();
    const dead = waitForEvent(worker, "job.dead-lettered");
    await f.client.enqueue(stranger, null);
    const event = await dead;
    expect(event).toMatchObject({ reason: "unknown-job", job: { name: "stranger" }, error: { code: "unknown-job" } });
    const ok = waitForEvent(worker, "job.succeeded");
    await f.client.enqueue(known, null);
    await ok;
    expect(ran).toBe(1);
  });

  it("dead-letters undecodable bytes as undecodable, keeping them verbatim", async () => {
    const f = fixture("undecodable");
    const worker = f.worker({ queues: [f.queue] });
    await worker.start();
    const bodies = ["not json", '{"v":1}', `{"v":1,"payload":${"[".repeat(100)}`, '{"__proto__":{}}'];
    for (const body of bodies) {
      const dead = waitForEvent(worker, "job.dead-lettered");
      await publishRaw(f.broker, f.queue, body);
      const event = await dead;
      expect(event.reason).toBe("undecodable");
      expect(event.job).toBeUndefined();
      expect(event.error.code).toBe("envelope-decode");
    }
    const letters = await deadLetters(f.broker, f.queue, 4);
    expect(letters.map((l) => l.body)).toEqual(bodies);
  });

  it("dead-letters a message named __proto__ as undecodable (not a job name) and one named constructor as unknown-job", async () => {
    const f = fixture("proto-names");
    const worker = f.worker({ queues: [f.queue] });
    await worker.start();
    const now = Date.now();
    const named = (name: string): string =>
      JSON.stringify({
        v: 1,
        id: `id-${name}`,
        name,
        queue: f.queue,
        payload: null,
        attempt: 1,
        maxAttempts: 3,
        priority: "normal",
        enqueuedAt: now,
        runAt: now,
        timeout: 30_000,
      });
    const proto = waitForEvent(worker, "job.dead-lettered");
    await publishRaw(f.broker, f.queue, named("__proto__"));
    expect(await proto).toMatchObject({ reason: "undecodable", error: { code: "envelope-decode" } });
    expect((await proto).error.message).toContain("bad name");
    const ctor = waitForEvent(worker, "job.dead-lettered");
    await publishRaw(f.broker, f.queue, named("constructor"));
    expect(await ctor).toMatchObject({ reason: "unknown-job", job: { name: "constructor" }, error: { code: "unknown-job" } });
  });

  it("runs a payload whose constructor key holds a string, refuses one holding an object at enqueue, and dead-letters it on receipt", async () => {
    const f = fixture("constructor-keys");
    const job = f.job<{ constructor: unknown; car?: string }>("f1.result");
    const seen: unknown[] = [];
    const worker = f.worker().handle(job, (payload) => {
      seen.push(payload);
    });
    await worker.start();
    const ok = waitForEvent(worker, "job.succeeded");
    await f.client.enqueue(job, { constructor: "Ferrari", car: "SF-24" });
    await ok;
    expect(seen).toEqual([{ constructor: "Ferrari", car: "SF-24" }]);
    expect(Object.getPrototypeOf(seen[0])).toBe(Object.prototype);
    await expect(f.client.enqueue(job, { constructor: { prototype: { polluted: true } } })).rejects.toMatchObject({
      code: "job-validation",
    });
    // The same object written straight to the broker, by a producer that skips the check.
    const dead = waitForEvent(worker, "job.dead-lettered");
    const now = Date.now();
    const body = JSON.stringify({
      v: 1,
      id: "ctor-object",
      name: job.name,
      queue: f.queue,
      payload: { constructor: { prototype: { polluted: true } } },
      attempt: 1,
      maxAttempts: 3,
      priority: "normal",
      enqueuedAt: now,
      runAt: now,
      timeout: 30_000,
    });
    await publishRaw(f.broker, f.queue, body);
    expect(await dead).toMatchObject({ reason: "undecodable", error: { code: "envelope-decode" } });
    expect(seen).toHaveLength(1);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("dead-letters a message over the worker's size limit as undecodable", async () => {
    const f = fixture("too-big");
    const job = f.job<string>("big");
    let ran = 0;
    const worker = f.worker({ maxPayloadBytes: 500 }).handle(job, () => {
      ran++;
    });
    await worker.start();
    const dead = waitForEvent(worker, "job.dead-lettered");
    await f.client.enqueue(job, "x".repeat(1_000));
    const event = await dead;
    expect(event.reason).toBe("undecodable");
    expect(event.error.message).toContain("over the limit of 500");
    expect(ran).toBe(0);
  });

  it("keeps only the first maxPayloadBytes bytes of an oversized undecodable message in its dead letter", async () => {
    const f = fixture("too-big-raw");
    const worker = f.worker({ queues: [f.queue], maxPayloadBytes: 500 });
    await worker.start();
    // 2,000 characters of 2 UTF-8 bytes each: the cut at 500 bytes falls between two characters;
    // with one more byte in front it would fall inside one, so it moves back a byte.
    for (const body of ["é".repeat(2_000), `x${"é".repeat(2_000)}`]) {
      const dead = waitForEvent(worker, "job.dead-lettered");
      await publishRaw(f.broker, f.queue, body);
      expect((await dead).reason).toBe("undecodable");
    }
    const letters = await deadLetters(f.broker, f.queue, 2);
    expect(letters.map((l) => l.body)).toEqual(["é".repeat(250), `x${"é".repeat(249)}`]);
  });

  it("dead-letters a received payload that fails the handler's schema as validation", async () => {
    const f = fixture("validation");
    const producerSide = f.job<unknown>("strict");
    const schema = {
      "~standard": {
        version: 1 as const,
        vendor: "test",
        validate: (value: unknown) => (typeof value === "number" ? { value } : { issues: [{ message: "expected a number", path: ["n"] }] }),
      },
    };
    const consumerSide = defineJob({ name: "strict", queue: f.queue, schema });
    let ran = 0;
    const worker = f.worker().handle(consumerSide, () => {
      ran++;
    });
    await worker.start();
    const dead = waitForEvent(worker, "job.dead-lettered");
    await f.client.enqueue(producerSide, "not a number");
    const event = await dead;
    expect(event.reason).toBe("validation");
    expect(event.error).toMatchObject({ code: "job-validation" });
    expect(event.error.message).toContain("n: expected a number");
    expect(ran).toBe(0);
  });

  it("dead-letters a message delivered more than maxDeliveries times as crash-loop", async () => {
    const f = fixture("crash-loop");
    const job = f.job<null>("crashy");
    await f.client.enqueue(job, null);
    // Consumers that die holding the delivery: each takes it and closes its own connection.
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) counts.push(...(await deliverAndDie(f.broker, f.queue)));
    expect(counts).toEqual([1, 2, 3]);
    let ran = 0;
    const worker = f.worker({ broker: f.scope.broker({ server: f.broker.server }), maxDeliveries: 3 }).handle(job, () => {
      ran++;
    });
    const dead = waitForEvent(worker, "job.dead-lettered");
    await worker.start();
    const event = await dead;
    expect(event.reason).toBe("crash-loop");
    expect(event.job?.name).toBe("crashy");
    expect(event.error.message).toContain("delivered 4 times");
    expect(ran).toBe(0);
    expect((await deadLetters(f.broker, f.queue, 1))[0]?.reason).toBe("crash-loop");
  });

  it("runs a message delivered exactly maxDeliveries times", async () => {
    const f = fixture("crash-edge");
    const job = f.job<null>("edge");
    await f.client.enqueue(job, null);
    for (let i = 0; i < 2; i++) await deliverAndDie(f.broker, f.queue);
    const worker = f.worker({ broker: f.scope.broker({ server: f.broker.server }), maxDeliveries: 3 }).handle(job, () => {});
    const succeeded = waitForEvent(worker, "job.succeeded");
    await worker.start();
    expect((await succeeded).job.attempt).toBe(1);
  });
});
