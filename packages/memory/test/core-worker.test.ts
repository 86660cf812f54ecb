import {
  BrokerClosedError,
  createAdmin,
  createWorker,
  defineJob,
  InvalidOptionsError,
  JobTimeoutError,
  NonRetryableError,
  type WorkerEventMap,
  type WorkerOptions,
} from "@jobs/core";
import { type ConsumeOptions, type DeadLetter, decodeEnvelope, type Envelope, encodeEnvelope } from "@jobs/core/adapter";
import { waitFor, waitForEvent } from "@jobs/core/testing";
import { afterAll, describe, expect, it } from "vitest";
import { createMemoryBroker, type MemoryBroker } from "../src/index.js";
import { eventLog, gate, scope, uniqueQueue } from "./core-support.js";

const noDelay = { type: "fixed", delay: 0 } as const;

async function deadLetters(broker: MemoryBroker, queue: string, count: number): Promise<DeadLetter[]> {
  return waitFor(
    async () => {
      const list = await broker.listDeadLetters(queue, { limit: 100 });
      return list.length >= count ? list : undefined;
    },
    { message: `waiting for ${count} dead letter(s) in ${queue}` },
  );
}

function rawEnvelope(queue: string, overrides: Partial<Envelope> = {}): Envelope {
  const now = Date.now();
  return {
    v: 1,
    id: crypto.randomUUID(),
    name: "raw",
    queue,
    payload: {},
    attempt: 1,
    maxAttempts: 3,
    priority: "normal",
    enqueuedAt: now,
    runAt: now,
    timeout: 10_000,
    ...overrides,
  };
}

async function publishRaw(broker: MemoryBroker, queue: string, body: string, id = crypto.randomUUID()): Promise<void> {
  const [outcome] = await broker.publish(queue, [{ id, body, priority: 2, delayMs: 0, dedupe: false }]);
  expect(outcome).toEqual({ ok: true, duplicate: false });
}

describe("worker: running jobs", () => {
  it("runs a job with its payload and info, then acks it", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("run");
    const job = defineJob<{ to: string }>({ name: "email.send", queue, maxAttempts: 4 });
    const seen: { payload: unknown; attempt: number; name: string; maxAttempts: number }[] = [];
    const worker = t.worker({ broker }).handle(job, (payload, ctx) => {
      seen.push({ payload, attempt: ctx.job.attempt, name: ctx.job.name, maxAttempts: ctx.job.maxAttempts });
    });
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded");
    const { id } = await t.client(broker).enqueue(job, { to: "ada@example.com" });
    expect((await succeeded).job.id).toBe(id);
    expect(seen).toEqual([{ payload: { to: "ada@example.com" }, attempt: 1, name: "email.send", maxAttempts: 4 }]);
    await waitFor(async () => (await broker.counts(queue)).active === 0);
    expect(await broker.counts(queue)).toEqual({ waiting: 0, delayed: 0, active: 0, dead: 0 });
  });

  it("never runs more jobs at once than its concurrency", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("concurrency");
    const job = defineJob<number>({ name: "slow", queue });
    let running = 0;
    let maxRunning = 0;
    let done = 0;
    const release = gate();
    const worker = t.worker({ broker, concurrency: 3 }).handle(job, async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await release.promise;
      await new Promise((resolve) => setImmediate(resolve));
      running--;
      done++;
    });
    await worker.start();
    const client = t.client(broker);
    await client.enqueueMany(Array.from({ length: 12 }, (_, i) => ({ job, payload: i })));
    await waitFor(() => running === 3);
    expect(worker.running).toBe(3);
    // Bounded window: with three handlers blocked, a fourth must not start.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(running).toBe(3);
    expect(maxRunning).toBe(3);
    release.open();
    await waitFor(() => done === 12);
    expect(maxRunning).toBe(3);
    expect(worker.running).toBe(0);
  });

  it("tells the broker the longest handler timeout registered for each queue it consumes", async () => {
    const t = scope();
    const broker = t.broker();
    const seen = new Map<string, ConsumeOptions>();
    const consume = broker.consume.bind(broker);
    // The memory broker stays real; this only records what the worker asks of it.
    broker.consume = (queue, options, onDelivery) => {
      seen.set(queue, options);
      return consume(queue, options, onDelivery);
    };
    const a = uniqueQueue("timeouts-a");
    const b = uniqueQueue("timeouts-b");
    const c = uniqueQueue("timeouts-c");
    const worker = t
      .worker({ broker, queues: [a, b, c] })
      .handle(defineJob({ name: "short", queue: a, timeout: "2m" }), () => {})
      .handle(defineJob({ name: "long", queue: a, timeout: "45m" }), () => {})
      .handle(defineJob({ name: "default", queue: b }), () => {});
    await worker.start();
    expect(seen.get(a)?.jobTimeoutMs).toBe(45 * 60_000);
    expect(seen.get(b)?.jobTimeoutMs).toBe(30 * 60_000);
    // No handler registered for c: the worker cannot know, and says nothing.
    expect(seen.get(c)).toBeDefined();
    expect(seen.get(c)?.jobTimeoutMs).toBeUndefined();
  });

  it.each([
    { prefetch: undefined, held: 3 },
    { prefetch: 8, held: 8 },
  ])("holds prefetch deliveries ($held with prefetch $prefetch) and runs only concurrency of them", async ({ prefetch, held }) => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("prefetch");
    const job = defineJob<number>({ name: "slow", queue });
    let running = 0;
    let done = 0;
    const release = gate();
    const options = prefetch === undefined ? { broker, concurrency: 3 } : { broker, concurrency: 3, prefetch };
    const worker = t.worker(options).handle(job, async () => {
      running++;
      await release.promise;
      running--;
      done++;
    });
    await worker.start();
    const client = t.client(broker);
    await client.enqueueMany(Array.from({ length: 12 }, (_, i) => ({ job, payload: i })));
    await waitFor(async () => running === 3 && (await broker.counts(queue)).active === held);
    expect(await broker.counts(queue)).toMatchObject({ waiting: 12 - held, active: held });
    expect(running).toBe(3);
    release.open();
    await waitFor(() => done === 12);
  });

  it("injects the worker's context into every handler", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("context");
    const job = defineJob<null>({ name: "ctx", queue });
    const context = { db: { name: "pool" }, mailer: { sent: [] as string[] } };
    const contexts: unknown[] = [];
    const signals: AbortSignal[] = [];
    const worker = t.worker({ broker, context }).handle(job, (_payload, ctx) => {
      contexts.push(ctx.context);
      signals.push(ctx.signal);
      ctx.context.mailer.sent.push("x");
    });
    await worker.start();
    const client = t.client(broker);
    await client.enqueue(job, null);
    await client.enqueue(job, null);
    await waitFor(() => contexts.length === 2);
    expect(contexts[0]).toBe(context);
    expect(contexts[1]).toBe(context);
    expect(context.mailer.sent).toEqual(["x", "x"]);
    expect(signals[0]).not.toBe(signals[1]);
    expect(signals.every((s) => s.aborted === false)).toBe(true);
  });

  it("runs the schema's output, after its transforms, in the handler", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("transform");
    const schema = {
      "~standard": {
        version: 1 as const,
        vendor: "test",
        validate: (value: unknown) => ({ value: { n: Number((value as { n: string }).n) * 2 } }),
      },
    };
    const job = defineJob({ name: "t", queue, schema });
    const seen: unknown[] = [];
    const worker = t.worker({ broker }).handle(job, (payload) => {
      seen.push(payload);
    });
    await worker.start();
    await t.client(broker).enqueue(job, { n: "21" } as never);
    await waitFor(() => seen.length === 1);
    expect(seen).toEqual([{ n: 42 }]);
  });

  it("delivers a payload nested as deep as the client accepts", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("deep");
    const job = defineJob<unknown>({ name: "deep", queue, maxAttempts: 1 });
    // 64 levels: the deepest payload enqueue accepts (65 is rejected with JobValidationError).
    const payload = Array.from({ length: 63 }).reduce<unknown>((inner) => [inner], []);
    const received: unknown[] = [];
    const worker = t.worker({ broker }).handle(job, (p) => {
      received.push(p);
    });
    await worker.start();
    const outcome = Promise.race([waitForEvent(worker, "job.succeeded"), waitForEvent(worker, "job.dead-lettered")]);
    await t.client(broker).enqueue(job, payload);
    const event = await outcome;
    expect("reason" in event ? `dead-lettered: ${event.reason}: ${event.error.message}` : "succeeded").toBe("succeeded");
    expect(received).toEqual([payload]);
  });

  it("retries a handler that throws a string, serializing it as NonError", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("throw-string");
    const job = defineJob<null>({ name: "s", queue, maxAttempts: 3, backoff: noDelay });
    const attempts: number[] = [];
    const failures: WorkerEventMap["job.failed"][] = [];
    const worker = t.worker({ broker }).handle(job, (_p, ctx) => {
      attempts.push(ctx.job.attempt);
      if (ctx.job.attempt === 1) throw "boom";
    });
    worker.on("job.failed", (e) => failures.push(e));
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded");
    await t.client(broker).enqueue(job, null);
    expect((await succeeded).job.attempt).toBe(2);
    expect(attempts).toEqual([1, 2]);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.error).toEqual({ name: "NonError", message: "boom" });
    expect(failures[0]?.willRetry).toBe(true);
  });

  it("retries a handler that throws undefined, then dead-letters it with the last error", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("throw-undefined");
    const job = defineJob<null>({ name: "u", queue, maxAttempts: 2, backoff: noDelay });
    let calls = 0;
    const worker = t.worker({ broker }).handle(job, () => {
      calls++;
      return Promise.reject(undefined);
    });
    await worker.start();
    const dead = waitForEvent(worker, "job.dead-lettered");
    const { id } = await t.client(broker).enqueue(job, null);
    const event = await dead;
    expect(event.reason).toBe("max-attempts");
    expect(event.error).toEqual({ name: "NonError", message: "undefined" });
    expect(calls).toBe(2);
    const [letter] = await deadLetters(broker, queue, 1);
    expect(letter?.reason).toBe("max-attempts");
    const envelope = decodeEnvelope(letter?.body ?? "", Number.POSITIVE_INFINITY);
    expect(envelope).toMatchObject({ id, attempt: 2, lastError: { name: "NonError", message: "undefined", attempt: 2 } });
  });

  it("retries a handler that throws synchronously", async () => {
    const t = scope();
    const broker = t.broker();
    const job = defineJob<null>({ name: "sync", queue: uniqueQueue("sync-throw"), maxAttempts: 2, backoff: noDelay });
    const worker = t.worker({ broker }).handle(job, (_p, ctx) => {
      if (ctx.job.attempt === 1) throw new TypeError("sync");
    });
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded");
    await t.client(broker).enqueue(job, null);
    expect((await succeeded).job.attempt).toBe(2);
  });

  it("carries the last error to the next attempt and waits for the backoff", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("backoff");
    const job = defineJob<null>({ name: "b", queue, maxAttempts: 2, backoff: { type: "fixed", delay: "150ms" } });
    const starts: number[] = [];
    const worker = t.worker({ broker }).handle(job, () => {
      starts.push(Date.now());
      if (starts.length === 1) throw new Error("first try fails: redis://u:pw-leak@h");
    });
    const retrying = waitForEvent(worker, "job.retrying");
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded");
    await t.client(broker).enqueue(job, null);
    const retry = await retrying;
    expect(retry.delayMs).toBe(150);
    expect(retry.error.message).toContain("first try fails");
    expect(retry.error.message).not.toContain("pw-leak");
    await succeeded;
    expect((starts[1] ?? 0) - (starts[0] ?? 0)).toBeGreaterThanOrEqual(150);
  });

  it("emits the events of each attempt in order", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("events");
    const flaky = defineJob<null>({ name: "flaky", queue, maxAttempts: 3, backoff: noDelay });
    const doomed = defineJob<null>({ name: "doomed", queue, maxAttempts: 2, backoff: noDelay });
    const fine = defineJob<null>({ name: "fine", queue });
    const worker = t
      .worker({ broker })
      .handle(flaky, (_p, ctx) => {
        if (ctx.job.attempt < 3) throw new Error("not yet");
      })
      .handle(doomed, () => {
        throw new Error("never");
      })
      .handle(fine, () => {});
    const log = eventLog(worker);
    await worker.start();
    const client = t.client(broker);
    const a = await client.enqueue(flaky, null);
    const b = await client.enqueue(doomed, null);
    const c = await client.enqueue(fine, null);
    await waitFor(() => log.get(a.id)?.length === 8 && log.get(b.id)?.length === 6 && log.get(c.id)?.length === 2);
    const ofAttempt = (id: string, attempt: number) => log.get(id)?.filter((line) => line.endsWith(`:${attempt}`));
    expect(ofAttempt(a.id, 1)).toEqual(["job.started:1", "job.failed:1", "job.retrying:1"]);
    expect(ofAttempt(a.id, 2)).toEqual(["job.started:2", "job.failed:2", "job.retrying:2"]);
    expect(ofAttempt(a.id, 3)).toEqual(["job.started:3", "job.succeeded:3"]);
    expect(ofAttempt(b.id, 1)).toEqual(["job.started:1", "job.failed:1", "job.retrying:1"]);
    expect(ofAttempt(b.id, 2)).toEqual(["job.started:2", "job.failed:2", "job.dead-lettered:2"]);
    expect(log.get(c.id)).toEqual(["job.started:1", "job.succeeded:1"]);
  });

  it("emits job.retrying of an attempt before job.started of the next one", async () => {
    const t = scope();
    const broker = t.broker();
    const flaky = defineJob<null>({ name: "flaky", queue: uniqueQueue("events-across"), maxAttempts: 3, backoff: noDelay });
    const worker = t.worker({ broker }).handle(flaky, (_p, ctx) => {
      if (ctx.job.attempt < 3) throw new Error("not yet");
    });
    const log = eventLog(worker);
    await worker.start();
    const { id } = await t.client(broker).enqueue(flaky, null);
    await waitFor(() => log.get(id)?.length === 8);
    expect(log.get(id)).toEqual([
      "job.started:1",
      "job.failed:1",
      "job.retrying:1",
      "job.started:2",
      "job.failed:2",
      "job.retrying:2",
      "job.started:3",
      "job.succeeded:3",
    ]);
  });

  it("says whether a failure will be retried", async () => {
    const t = scope();
    const broker = t.broker();
    const job = defineJob<null>({ name: "w", queue: uniqueQueue("will-retry"), maxAttempts: 2, backoff: noDelay });
    const flags: boolean[] = [];
    const worker = t.worker({ broker }).handle(job, () => {
      throw new Error("x");
    });
    worker.on("job.failed", (e) => flags.push(e.willRetry));
    await worker.start();
    const dead = waitForEvent(worker, "job.dead-lettered");
    await t.client(broker).enqueue(job, null);
    await dead;
    expect(flags).toEqual([true, false]);
  });

  it("dead-letters a NonRetryableError at once", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("non-retryable");
    const job = defineJob<null>({ name: "nr", queue, maxAttempts: 10 });
    let calls = 0;
    const worker = t.worker({ broker }).handle(job, () => {
      calls++;
      throw new NonRetryableError("card declined");
    });
    await worker.start();
    const dead = waitForEvent(worker, "job.dead-lettered");
    await t.client(broker).enqueue(job, null);
    const event = await dead;
    expect(event.reason).toBe("non-retryable");
    expect(event.error).toMatchObject({ name: "NonRetryableError", code: "non-retryable", message: "card declined" });
    expect(event.job?.attempt).toBe(1);
    expect(calls).toBe(1);
    expect((await deadLetters(broker, queue, 1))[0]?.reason).toBe("non-retryable");
  });

  it("aborts the signal with JobTimeoutError when the job times out, and retries it", async () => {
    const t = scope();
    const broker = t.broker();
    const job = defineJob<null>({ name: "slow", queue: uniqueQueue("timeout"), timeout: 50, maxAttempts: 2, backoff: noDelay });
    const reasons: unknown[] = [];
    const worker = t.worker({ broker }).handle(job, async (_p, ctx) => {
      if (ctx.job.attempt === 2) return;
      await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
      reasons.push(ctx.signal.reason);
    });
    const failed = waitForEvent(worker, "job.failed");
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded");
    await t.client(broker).enqueue(job, null);
    const failure = await failed;
    expect(failure.error.code).toBe("job-timeout");
    expect(failure.durationMs).toBeGreaterThanOrEqual(45);
    expect((await succeeded).job.attempt).toBe(2);
    expect(reasons[0]).toBeInstanceOf(JobTimeoutError);
    expect((reasons[0] as JobTimeoutError).timeoutMs).toBe(50);
  });

  it("keeps running when an event listener throws", async () => {
    const t = scope();
    const broker = t.broker();
    const job = defineJob<null>({ name: "l", queue: uniqueQueue("listener") });
    const worker = t.worker({ broker }).handle(job, () => {});
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    try {
      worker.on("job.started", () => {
        throw new Error("listener bug");
      });
      await worker.start();
      const succeeded = waitForEvent(worker, "job.succeeded");
      await t.client(broker).enqueue(job, null);
      await succeeded;
      await waitFor(() => warnings.some((w) => w.includes("listener bug")));
    } finally {
      process.off("warning", onWarning);
    }
  });
});

describe("worker: messages it cannot run", () => {
  it("dead-letters a job nobody handles as unknown-job and keeps running", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("unknown");
    const known = defineJob<null>({ name: "known", queue });
    const stranger = defineJob<null>({ name: "stranger", queue });
    let ran = 0;
    const worker = t.worker({ broker }).handle(known, () => {
      ran++;
    });
    await worker.start();
    const dead = waitForEvent(worker, "job.dead-lettered");
    const client = t.client(broker);
    await client.enqueue(stranger, null);
    const event = await dead;
    expect(event).toMatchObject({ reason: "unknown-job", job: { name: "stranger" }, error: { code: "unknown-job" } });
    const ok = waitForEvent(worker, "job.succeeded");
    await client.enqueue(known, null);
    await ok;
    expect(ran).toBe(1);
  });

  it("dead-letters undecodable bytes as undecodable, keeping them verbatim", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("undecodable");
    const worker = t.worker({ broker, queues: [queue] });
    await worker.start();
    for (const body of ["not json", '{"v":1}', `{"v":1,"payload":${"[".repeat(100)}`, '{"__proto__":{}}']) {
      const dead = waitForEvent(worker, "job.dead-lettered");
      await publishRaw(broker, queue, body);
      const event = await dead;
      expect(event.reason).toBe("undecodable");
      expect(event.job).toBeUndefined();
      expect(event.error.code).toBe("envelope-decode");
    }
    const letters = await deadLetters(broker, queue, 4);
    expect(letters.map((l) => l.body)).toEqual(["not json", '{"v":1}', `{"v":1,"payload":${"[".repeat(100)}`, '{"__proto__":{}}']);
  });

  it("dead-letters a message over the worker's size limit as undecodable", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("too-big");
    const job = defineJob<string>({ name: "big", queue });
    let ran = 0;
    const worker = t.worker({ broker, maxPayloadBytes: 500 }).handle(job, () => {
      ran++;
    });
    await worker.start();
    const dead = waitForEvent(worker, "job.dead-lettered");
    await t.client(broker).enqueue(job, "x".repeat(1_000));
    const event = await dead;
    expect(event.reason).toBe("undecodable");
    expect(event.error.message).toContain("over the limit of 500");
    expect(ran).toBe(0);
  });

  it("keeps only the first maxPayloadBytes bytes of an oversized undecodable message in its dead letter", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("too-big-raw");
    const worker = t.worker({ broker, queues: [queue], maxPayloadBytes: 500 });
    await worker.start();
    // 2,000 characters of 2 UTF-8 bytes each: the cut at 500 bytes falls between two characters;
    // with one more byte in front it would fall inside one, so it moves back a byte.
    for (const body of ["é".repeat(2_000), `x${"é".repeat(2_000)}`]) {
      const dead = waitForEvent(worker, "job.dead-lettered");
      await publishRaw(broker, queue, body);
      expect((await dead).reason).toBe("undecodable");
    }
    const letters = await deadLetters(broker, queue, 2);
    expect(letters.map((l) => l.body)).toEqual(["é".repeat(250), `x${"é".repeat(249)}`]);
  });

  it("dead-letters a received payload that fails the handler's schema as validation", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("validation");
    const producerSide = defineJob<unknown>({ name: "strict", queue });
    const schema = {
      "~standard": {
        version: 1 as const,
        vendor: "test",
        validate: (value: unknown) => (typeof value === "number" ? { value } : { issues: [{ message: "expected a number", path: ["n"] }] }),
      },
    };
    const consumerSide = defineJob({ name: "strict", queue, schema });
    let ran = 0;
    const worker = t.worker({ broker }).handle(consumerSide, () => {
      ran++;
    });
    await worker.start();
    const dead = waitForEvent(worker, "job.dead-lettered");
    await t.client(broker).enqueue(producerSide, "not a number");
    const event = await dead;
    expect(event.reason).toBe("validation");
    expect(event.error).toMatchObject({ code: "job-validation" });
    expect(event.error.message).toContain("n: expected a number");
    expect(ran).toBe(0);
  });

  it("puts back a delivery that arrives before its runAt without counting an attempt", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("early");
    const job = defineJob<null>({ name: "raw", queue });
    const starts: { at: number; attempt: number }[] = [];
    const worker = t.worker({ broker }).handle(job, (_p, ctx) => {
      starts.push({ at: Date.now(), attempt: ctx.job.attempt });
    });
    const deferred = waitForEvent(worker, "job.deferred");
    await worker.start();
    const runAt = Date.now() + 150;
    // Published with no broker delay, as a broker whose native delay ran short would deliver it.
    await publishRaw(broker, queue, encodeEnvelope(rawEnvelope(queue, { runAt, payload: null })));
    const event = await deferred;
    expect(event.delayMs).toBeGreaterThan(100);
    expect(event.delayMs).toBeLessThanOrEqual(150);
    await waitFor(() => starts.length === 1);
    expect(starts[0]?.at).toBeGreaterThanOrEqual(runAt);
    expect(starts[0]?.attempt).toBe(1);
  });

  it("re-delays a job due beyond the broker's native delay until its runAt", async () => {
    const t = scope();
    const broker = t.broker({ maxDelay: 40 });
    const job = defineJob<null>({ name: "far", queue: uniqueQueue("redelay") });
    let deferrals = 0;
    const starts: number[] = [];
    const worker = t.worker({ broker }).handle(job, (_p, ctx) => {
      starts.push(ctx.job.attempt);
    });
    worker.on("job.deferred", () => deferrals++);
    await worker.start();
    const { runAt } = await t.client(broker).enqueue(job, null, { delay: 150 });
    await waitFor(() => starts.length === 1);
    expect(Date.now()).toBeGreaterThanOrEqual(runAt);
    expect(starts).toEqual([1]);
    expect(deferrals).toBeGreaterThanOrEqual(2);
  });

  it("dead-letters a message delivered more than maxDeliveries times as crash-loop", async () => {
    const t = scope();
    const publisher = t.broker();
    const queue = uniqueQueue("crash-loop");
    const job = defineJob<null>({ name: "crashy", queue });
    await t.client(publisher).enqueue(job, null);
    // Consumers that die holding the delivery: each takes it and closes its own connection.
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const doomed = createMemoryBroker({ server: publisher.server });
      const took = new Promise<void>((resolve) => {
        void doomed.consume(queue, { prefetch: 1, leaseMs: 60_000 }, (delivery) => {
          counts.push(delivery.deliveryCount);
          void doomed.close().then(resolve);
        });
      });
      await took;
    }
    expect(counts).toEqual([1, 2, 3]);
    let ran = 0;
    const worker = t.worker({ broker: t.broker({ server: publisher.server }), maxDeliveries: 3 }).handle(job, () => {
      ran++;
    });
    const dead = waitForEvent(worker, "job.dead-lettered");
    await worker.start();
    const event = await dead;
    expect(event.reason).toBe("crash-loop");
    expect(event.job?.name).toBe("crashy");
    expect(event.error.message).toContain("delivered 4 times");
    expect(ran).toBe(0);
    expect((await deadLetters(publisher, queue, 1))[0]?.reason).toBe("crash-loop");
  });

  it("runs a message delivered exactly maxDeliveries times", async () => {
    const t = scope();
    const publisher = t.broker();
    const queue = uniqueQueue("crash-edge");
    const job = defineJob<null>({ name: "edge", queue });
    await t.client(publisher).enqueue(job, null);
    for (let i = 0; i < 2; i++) {
      const doomed = createMemoryBroker({ server: publisher.server });
      await new Promise<void>((resolve) => {
        void doomed.consume(queue, { prefetch: 1, leaseMs: 60_000 }, () => {
          void doomed.close().then(resolve);
        });
      });
    }
    const worker = t.worker({ broker: t.broker({ server: publisher.server }), maxDeliveries: 3 }).handle(job, () => {});
    const succeeded = waitForEvent(worker, "job.succeeded");
    await worker.start();
    expect((await succeeded).job.attempt).toBe(1);
  });
});

describe("worker: priority", () => {
  it.each([["native" as const], ["none" as const]])("starts the highest priority first from a backlog (priority %s)", async (priority) => {
    const t = scope();
    const broker = t.broker({ priority, paused: true });
    const queue = uniqueQueue(`prio-${priority}`);
    const job = defineJob<string>({ name: "p", queue });
    const order: string[] = [];
    const worker = t.worker({ broker, concurrency: 1 }).handle(job, (p) => {
      order.push(p);
    });
    await worker.start();
    const client = t.client(broker);
    await client.enqueue(job, "low", { priority: "low" });
    await client.enqueue(job, "normal-1");
    await client.enqueue(job, "critical", { priority: "critical" });
    await client.enqueue(job, "trivial", { priority: "trivial" });
    await client.enqueue(job, "high", { priority: "high" });
    await client.enqueue(job, "normal-2");
    broker.resume();
    await waitFor(() => order.length === 6);
    expect(order).toEqual(["critical", "high", "normal-1", "normal-2", "low", "trivial"]);
  });

  it.each([
    { aging: undefined, lowAt: 40 },
    { aging: 100, lowAt: "early" as const },
  ])("a low job behind a stream of critical ones starts after $lowAt with priorityAging $aging", async ({ aging, lowAt }) => {
    const t = scope();
    const broker = t.broker({ paused: true });
    const queue = uniqueQueue("aging");
    const job = defineJob<string>({ name: "a", queue });
    const client = t.client(broker);
    const order: string[] = [];
    let next = 5;
    const base = { broker, concurrency: 1, prefetch: 100 };
    // A stream: each critical job holds the only slot for 10 ms and enqueues the next critical job,
    // so critical work keeps arriving (40 in all) after the low job was buffered.
    const worker = t.worker(aging === undefined ? base : { ...base, priorityAging: aging }).handle(job, async (p) => {
      order.push(p);
      if (p === "low") return;
      if (next < 40) await client.enqueue(job, `critical-${next++}`, { priority: "critical" });
      await new Promise((resolve) => setTimeout(resolve, 10));
    });
    await worker.start();
    await client.enqueue(job, "low", { priority: "low" });
    await client.enqueueMany(
      Array.from({ length: 5 }, (_, i) => ({ job, payload: `critical-${i}`, options: { priority: "critical" as const } })),
    );
    broker.resume();
    await waitFor(() => order.length === 41, { timeout: 5_000 });
    if (lowAt === "early") {
      // Aged after 100 ms, so it starts while critical jobs keep coming.
      expect(order.indexOf("low")).toBeGreaterThan(0);
      expect(order.indexOf("low")).toBeLessThan(40);
    } else {
      expect(order.indexOf("low")).toBe(lowAt);
    }
  });
});

describe("worker: leases", () => {
  it("keeps the lease of a job running longer than the lease by heartbeats", async () => {
    const t = scope();
    const broker = t.broker();
    const job = defineJob<null>({ name: "long", queue: uniqueQueue("heartbeat") });
    let starts = 0;
    const lost: unknown[] = [];
    const worker = t.worker({ broker, lease: 150 }).handle(job, async () => {
      starts++;
      await new Promise((resolve) => setTimeout(resolve, 600));
    });
    worker.on("job.lease-lost", (e) => lost.push(e));
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded", () => true, { timeout: 3_000 });
    await t.client(broker).enqueue(job, null);
    await succeeded;
    expect(starts).toBe(1);
    expect(lost).toEqual([]);
  });

  it("does not start a buffered job whose lease ran out while it waited: lease-lost, and it runs once, from its redelivery", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("buffered-lease");
    const lease = 100;
    const blocker = defineJob<null>({ name: "blocker", queue });
    const victim = defineJob<null>({ name: "victim", queue });
    const open = gate();
    let blocked = false;
    let victimStarts = 0;
    const worker = t
      .worker({ broker, lease, concurrency: 1, prefetch: 2 })
      .handle(blocker, async () => {
        if (blocked) return;
        blocked = true;
        await open.promise;
        // The event loop stalls past the lease: no heartbeat reaches the broker meanwhile, so the
        // victim, buffered behind this job, loses its lease (the broker redelivers it).
        const until = Date.now() + 3 * lease;
        while (Date.now() < until) {}
      })
      .handle(victim, () => {
        victimStarts++;
      });
    const lost: string[] = [];
    worker.on("job.lease-lost", (e) => lost.push(e.job?.name ?? "?"));
    const client = t.client(broker);
    await client.enqueue(blocker, null);
    await client.enqueue(victim, null);
    await worker.start();
    await waitFor(() => blocked && broker.server.queues.get(queue)?.active.size === 2, { message: "victim not buffered" });
    const victimDone = waitForEvent(worker, "job.succeeded", (e) => e.job.name === "victim");
    open.open();
    await victimDone;
    expect(victimStarts).toBe(1);
    expect(lost).toContain("victim");
  });
});

describe("worker: lifecycle", () => {
  it("close() while idle resolves at once", async () => {
    const t = scope();
    const broker = t.broker();
    const worker = t.worker({ broker, shutdownTimeout: "30s" }).handle(defineJob({ name: "i", queue: uniqueQueue("idle") }), () => {});
    await worker.start();
    const started = performance.now();
    await worker.close();
    expect(performance.now() - started).toBeLessThan(500);
    await worker.close();
  });

  it("start() twice is idempotent: one consumer per queue", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("start-twice");
    const job = defineJob<null>({ name: "s", queue });
    let runs = 0;
    const worker = t.worker({ broker }).handle(job, () => {
      runs++;
    });
    await worker.start();
    await worker.start();
    expect(broker.server.queues.get(queue)?.consumers).toHaveLength(1);
    const succeeded = waitForEvent(worker, "job.succeeded");
    await t.client(broker).enqueue(job, null);
    await succeeded;
    expect(runs).toBe(1);
  });

  it("refuses handle() after start", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("late-handle");
    const worker = t.worker({ broker }).handle(defineJob({ name: "a", queue }), () => {});
    await worker.start();
    expect(() => worker.handle(defineJob({ name: "b", queue }), () => {})).toThrow(InvalidOptionsError);
    try {
      worker.handle(defineJob({ name: "c", queue }), () => {});
    } catch (error) {
      expect((error as InvalidOptionsError).field).toBe("handle");
    }
  });

  it("refuses a second handler for the same job name, and non-functions", () => {
    const t = scope();
    const broker = t.broker();
    const job = defineJob({ name: "dup", queue: uniqueQueue("dup") });
    const worker = t.worker({ broker }).handle(job, () => {});
    expect(() => worker.handle(defineJob({ name: "dup" }), () => {})).toThrow(/already registered/);
    expect(() => worker.handle(defineJob({ name: "other" }), "nope" as unknown as () => void)).toThrow(InvalidOptionsError);
    expect(() => worker.handle({ name: "fake" } as unknown as typeof job, () => {})).toThrow(InvalidOptionsError);
  });

  it("refuses to start with nothing to consume, and after close", async () => {
    const t = scope();
    const broker = t.broker();
    const empty = t.worker({ broker });
    await expect(empty.start()).rejects.toThrow(InvalidOptionsError);
    const closed = t.worker({ broker }).handle(defineJob({ name: "c", queue: uniqueQueue("closed") }), () => {});
    await closed.close();
    await expect(closed.start()).rejects.toBeInstanceOf(BrokerClosedError);
  });

  it("consumes the queues it is given, even without handlers for them", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("explicit");
    const worker = t.worker({ broker, queues: [queue] });
    await worker.start();
    expect(broker.server.queues.get(queue)?.consumers).toHaveLength(1);
  });

  it("on close, aborts a running job after the timeout and hands it back without counting an attempt", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("shutdown");
    const job = defineJob<null>({ name: "stubborn", queue, maxAttempts: 5 });
    const reasons: unknown[] = [];
    const failures: unknown[] = [];
    const first = t.worker({ broker }).handle(job, async (_p, ctx) => {
      await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
      reasons.push(ctx.signal.reason);
      throw ctx.signal.reason;
    });
    first.on("job.failed", (e) => failures.push(e));
    const started = waitForEvent(first, "job.started");
    await first.start();
    const { id } = await t.client(broker).enqueue(job, null);
    await started;
    await first.close({ timeout: 50 });
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(BrokerClosedError);
    expect(failures).toEqual([]);
    await waitFor(async () => (await broker.counts(queue)).waiting === 1);

    const attempts: number[] = [];
    const second = t.worker({ broker }).handle(job, (_p, ctx) => {
      attempts.push(ctx.job.attempt);
    });
    const done = waitForEvent(second, "job.succeeded");
    await second.start();
    expect((await done).job.id).toBe(id);
    expect(attempts).toEqual([1]);
  });

  it("a second close() with a shorter timeout aborts running jobs at once (second SIGTERM)", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("second-close");
    const job = defineJob<null>({ name: "long", queue, maxAttempts: 5 });
    const succeeded: unknown[] = [];
    const worker = t.worker({ broker }).handle(job, async (_p, ctx) => {
      await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
      throw ctx.signal.reason;
    });
    worker.on("job.succeeded", (e) => succeeded.push(e));
    const started = waitForEvent(worker, "job.started");
    await worker.start();
    await t.client(broker).enqueue(job, null);
    await started;
    const t0 = performance.now();
    const first = worker.close({ timeout: "30s" });
    const second = worker.close({ timeout: 0 });
    expect(second).toBe(first);
    await second;
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(succeeded).toEqual([]);
    await waitFor(async () => (await broker.counts(queue)).waiting === 1);
  });

  it("on close, lets a running job finish within the timeout and acks it", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("graceful");
    const job = defineJob<null>({ name: "quick", queue });
    const release = gate();
    let aborted = false;
    const worker = t.worker({ broker }).handle(job, async (_p, ctx) => {
      await release.promise;
      aborted = ctx.signal.aborted;
    });
    const started = waitForEvent(worker, "job.started");
    const succeeded = waitForEvent(worker, "job.succeeded");
    await worker.start();
    await t.client(broker).enqueue(job, null);
    await started;
    const closing = worker.close({ timeout: "5s" });
    release.open();
    await closing;
    await succeeded;
    expect(aborted).toBe(false);
    expect(await broker.counts(queue)).toEqual({ waiting: 0, delayed: 0, active: 0, dead: 0 });
  });

  it("on close, hands back jobs it holds but has not started", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("buffered");
    const job = defineJob<number>({ name: "held", queue });
    const release = gate();
    const ran: number[] = [];
    const worker = t.worker({ broker, concurrency: 1 }).handle(job, async (n) => {
      ran.push(n);
      await release.promise;
    });
    const started = waitForEvent(worker, "job.started");
    await worker.start();
    await t.client(broker).enqueueMany([0, 1, 2].map((payload) => ({ job, payload })));
    await started;
    const closing = worker.close({ timeout: "5s" });
    release.open();
    await closing;
    expect(ran).toEqual([0]);
    await waitFor(async () => (await broker.counts(queue)).waiting === 2);
  });
});

describe("createWorker options", () => {
  const broker = createMemoryBroker();
  afterAll(() => broker.close());
  it.each([
    [{ concurrency: 0 }, "concurrency"],
    [{ concurrency: 1.5 }, "concurrency"],
    [{ concurrency: 10_001 }, "concurrency"],
    [{ prefetch: 0 }, "prefetch"],
    [{ prefetch: 2.5 }, "prefetch"],
    [{ priorityAging: "soon" }, "priorityAging"],
    [{ lease: 50 }, "lease"],
    [{ lease: "soon" }, "lease"],
    [{ shutdownTimeout: -1 }, "shutdownTimeout"],
    [{ maxDeliveries: 0 }, "maxDeliveries"],
    [{ queues: "default" }, "queues"],
    [{ queues: ["ok", "not.ok"] }, "queues[1]"],
  ])("rejects %j naming %s", (options, field) => {
    try {
      createWorker({ broker, ...options } as WorkerOptions<undefined>);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidOptionsError);
      expect((error as InvalidOptionsError).field).toBe(field);
    }
  });

  it("needs a broker", () => {
    expect(() => createWorker({} as WorkerOptions<undefined>)).toThrow(/broker/);
  });
});

describe("admin over a worker's dead letters", () => {
  it("bounds each excerpt in UTF-8 bytes, 1 KiB by default, never splitting a character", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("excerpt");
    const admin = createAdmin({ broker });
    // Three-byte and four-byte characters: a bound in characters would return three to four times the bytes.
    for (const body of ["€".repeat(5_000), "😀".repeat(5_000), "short"]) {
      await publishRaw(broker, queue, body);
    }
    const worker = t.worker({ broker, queues: [queue] });
    await worker.start();
    await deadLetters(broker, queue, 3);
    const views = await admin.listDeadLetters(queue);
    expect(views.map((v) => Buffer.byteLength(v.excerpt))).toEqual([1_023, 1_023, 5]);
    expect(views[0]?.excerpt).toBe(`${"€".repeat(340)}…`);
    expect(views[1]?.excerpt).toBe(`${"😀".repeat(255)}…`);
    expect(views[2]?.excerpt).toBe("short");
    for (const v of await admin.listDeadLetters(queue, { excerptBytes: 100 }))
      expect(Buffer.byteLength(v.excerpt)).toBeLessThanOrEqual(100);
    await expect(admin.listDeadLetters(queue, { excerptBytes: 2 })).rejects.toMatchObject({ code: "invalid-options" });
  });

  it("requeues a dead letter as a fresh attempt 1 without its last error", async () => {
    const t = scope();
    const broker = t.broker();
    const queue = uniqueQueue("requeue");
    const job = defineJob<string>({ name: "r", queue, maxAttempts: 2, backoff: noDelay });
    const admin = createAdmin({ broker });
    let fail = true;
    const attempts: number[] = [];
    const worker = t.worker({ broker }).handle(job, (_p, ctx) => {
      attempts.push(ctx.job.attempt);
      if (fail) throw new Error("down");
    });
    await worker.start();
    const dead = waitForEvent(worker, "job.dead-lettered");
    const { id } = await t.client(broker).enqueue(job, "p");
    await dead;
    const views = await admin.listDeadLetters(queue, { excerptBytes: 10 });
    expect(views).toHaveLength(1);
    expect(views[0]).toMatchObject({ id, name: "r", attempt: 2, reason: "max-attempts", error: { message: "down" } });
    expect(views[0]?.excerpt).toMatch(/^\{.{6}…$/);
    expect(await admin.counts(queue)).toMatchObject({ dead: 1 });
    fail = false;
    const succeeded = waitForEvent(worker, "job.succeeded");
    expect(await admin.requeueDeadLetters(queue)).toBe(1);
    expect((await succeeded).job).toMatchObject({ id, attempt: 1 });
    expect(attempts).toEqual([1, 2, 1]);
    expect(await admin.counts(queue)).toMatchObject({ dead: 0 });
  });
});

describe("worker: start", () => {
  it("start() without any queue rejects, and works once a handler is registered", async () => {
    const s = scope();
    const broker = s.broker();
    const worker = s.worker({ broker });
    await expect(worker.start()).rejects.toMatchObject({ code: "invalid-options", field: "queues" });
    const job = defineJob<{ n: number }>({ name: "start.later", queue: uniqueQueue("start") });
    worker.handle(job, () => undefined);
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded");
    await s.client(broker).enqueue(job, { n: 1 });
    await succeeded;
  });
});
