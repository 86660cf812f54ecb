import { createMemoryBroker } from "@jobs/memory";
import { afterAll, describe, expect, it } from "vitest";
import { BrokerClosedError, createWorker, defineJob, InvalidOptionsError, type WorkerOptions } from "../src/index.js";
import { waitForEvent } from "../src/testing/index.js";
import { fixture } from "./support.js";

describe("worker: lifecycle", () => {
  it("start() twice is idempotent: one consumer per queue", async () => {
    const f = fixture("start-twice");
    const job = f.job<null>("s");
    let runs = 0;
    const worker = f.worker().handle(job, () => {
      runs++;
    });
    await worker.start();
    await worker.start();
    expect(f.broker.server.queues.get(f.queue)?.consumers).toHaveLength(1);
    const succeeded = waitForEvent(worker, "job.succeeded");
    await f.client.enqueue(job, null);
    await succeeded;
    expect(runs).toBe(1);
  });

  it("refuses handle() after start", async () => {
    const f = fixture("late-handle");
    const worker = f.worker().handle(f.job("a"), () => {});
    await worker.start();
    expect(() => worker.handle(f.job("b"), () => {})).toThrow(InvalidOptionsError);
    try {
      worker.handle(f.job("c"), () => {});
    } catch (error) {
      expect((error as InvalidOptionsError).field).toBe("handle");
    }
  });

  it("refuses a second handler for the same job name, and non-functions", () => {
    const f = fixture("dup");
    const job = f.job("dup");
    const worker = f.worker().handle(job, () => {});
    expect(() => worker.handle(defineJob({ name: "dup" }), () => {})).toThrow(/already registered/);
    expect(() => worker.handle(defineJob({ name: "other" }), "nope" as unknown as () => void)).toThrow(InvalidOptionsError);
    expect(() => worker.handle({ name: "fake" } as unknown as typeof job, () => {})).toThrow(InvalidOptionsError);
  });

  it("refuses to start with nothing to consume, and after close", async () => {
    const f = fixture("closed");
    const empty = f.worker();
    await expect(empty.start()).rejects.toThrow(InvalidOptionsError);
    const closed = f.worker().handle(f.job("c"), () => {});
    await closed.close();
    await expect(closed.start()).rejects.toBeInstanceOf(BrokerClosedError);
  });

  it("consumes the queues it is given, even without handlers for them", async () => {
    const f = fixture("explicit");
    await f.worker({ queues: [f.queue] }).start();
    expect(f.broker.server.queues.get(f.queue)?.consumers).toHaveLength(1);
  });

  it("start() without any queue rejects, and works once a handler is registered", async () => {
    const f = fixture("start");
    const worker = f.worker();
    await expect(worker.start()).rejects.toMatchObject({ code: "invalid-options", field: "queues" });
    const job = f.job<{ n: number }>("start.later");
    worker.handle(job, () => undefined);
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded");
    await f.client.enqueue(job, { n: 1 });
    await succeeded;
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
