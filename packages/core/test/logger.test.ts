/**
 * Loud by default, quiet on request: warnings and errors nobody listens to reach the console once
 * per code; a listener or a logger (pino, console) takes them over; `logger: false` silences them.
 * Console output is captured by replacing `console.warn`/`console.error` for the test; the broker
 * is the real in-process one.
 */
import { createMemoryBroker, type MemoryBroker } from "@jobs/memory";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { brokerEvents, warnInsecureConnection } from "../src/adapter/index.js";
import { Emitter, type WorkerEventMap } from "../src/events.js";
import { createAdmin, createClient, createWorker, InvalidOptionsError, type Logger } from "../src/index.js";
import { workerReporting } from "../src/internal/entries.js";
import { captureConsole, waitFor } from "../src/testing/index.js";
import { fixture, gate, uniqueQueue } from "./support.js";

const SECRET = "hunter2-s3cret";
const URL_WITH_PASSWORD = `redis://app:${SECRET}@db.example.com:6379/0`;

let warned: string[];
let errored: string[];

let restore: () => void;

beforeEach(() => {
  ({ warned, errored, restore } = captureConsole());
});

afterEach(() => restore());

/** A real pino logger writing JSON lines into an array. */
function pinoLines(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

/** Makes the memory broker emit its `error` event: a consumer whose delivery callback throws (with a password in the message). */
async function brokerError(broker: MemoryBroker, times = 1): Promise<void> {
  const queue = uniqueQueue("broker-error");
  const sub = await broker.consume(queue, { prefetch: 1, leaseMs: 60_000 }, (delivery) => {
    void delivery.ack();
    throw new Error(`cannot reach ${URL_WITH_PASSWORD}`);
  });
  const publisher = createMemoryBroker({ server: broker.server, logger: false });
  for (let i = 0; i < times; i++) {
    await publisher.publish(queue, [{ id: `m${i}`, body: "{}", priority: 2, delayMs: 0, dedupe: false }]);
    await waitFor(async () => (await broker.counts(queue)).waiting === 0 && (await broker.counts(queue)).active === 0);
  }
  await sub.stop();
  await publisher.close();
}

describe("logger: default console output", () => {
  it("prints each broker warning nobody hears once per code, with its code", async () => {
    const events = brokerEvents("test", undefined);
    warnInsecureConnection(events, "test", "connecting to 10.1.2.3 without TLS");
    warnInsecureConnection(events, "test", "connecting to 10.1.2.4 without TLS");
    events.emit("config-warning", { code: "JOBS_TEST_A", message: "[jobs] [test] a is off" });
    events.emit("config-warning", { code: "JOBS_TEST_A", message: "[jobs] [test] a is still off" });
    events.emit("config-warning", { code: "JOBS_TEST_B", message: "[jobs] [test] b is off" });
    await waitFor(() => warned.some((w) => w.includes("JOBS_INSECURE_CONNECTION")));
    expect(warned).toHaveLength(3);
    expect(warned.filter((w) => w.includes("[JOBS_TEST_A]"))).toEqual([expect.stringContaining("[jobs] [test] a is off")]);
    expect(warned.filter((w) => w.includes("[JOBS_TEST_B]"))).toHaveLength(1);
    expect(warned.filter((w) => w.includes("[JOBS_INSECURE_CONNECTION]"))).toEqual([expect.stringContaining("10.1.2.3")]);
    expect(errored).toEqual([]);
  });

  it("prints a broker error on console.error once per broker, redacted", async () => {
    const broker = createMemoryBroker({});
    try {
      await brokerError(broker, 2);
      await waitFor(() => errored.length > 0);
      expect(errored).toHaveLength(1);
      expect(errored[0]).toContain("[JOBS_BROKER_ERROR]");
      expect(errored[0]).toContain("[jobs] [memory]");
      expect(errored[0]).toContain("db.example.com");
      expect(errored[0]).not.toContain(SECRET);
      // Once per instance: another broker says it again.
      const other = createMemoryBroker({});
      await brokerError(other);
      await other.close();
      expect(errored).toHaveLength(2);
    } finally {
      await broker.close();
    }
  });

  it("says nothing on the console when a listener hears the event", async () => {
    const broker = createMemoryBroker({});
    const heard: string[] = [];
    broker.on("error", (e) => heard.push(e.error.message));
    try {
      await brokerError(broker);
      await waitFor(() => heard.length === 1);
      expect(heard[0]).not.toContain(SECRET);
      expect(errored).toEqual([]);
    } finally {
      await broker.close();
    }
  });

  it("prints nothing with logger: false, and listeners still hear the event", async () => {
    const events = brokerEvents("test", false);
    const heard: string[] = [];
    events.on("config-warning", (e) => heard.push(e.code));
    events.emit("config-warning", { code: "JOBS_TEST_A", message: "[jobs] [test] a is off" });
    events.emit("disconnected", {});
    const broker = createMemoryBroker({ logger: false });
    try {
      await brokerError(broker);
      expect(heard).toEqual(["JOBS_TEST_A"]);
      expect(warned).toEqual([]);
      expect(errored).toEqual([]);
    } finally {
      await broker.close();
    }
  });

  it("prints a worker's lost lease once (JOBS_LEASE_LOST), without the payload", async () => {
    const f = fixture("lease-lost-default");
    const job = f.job<{ card: string }>("charge");
    const release = gate();
    let started = 0;
    const worker = f.worker({ concurrency: 2 }).handle(job, async () => {
      started++;
      await release.promise;
    });
    await worker.start();
    await f.client.enqueue(job, { card: "payload-secret-4242" });
    await f.client.enqueue(job, { card: "payload-secret-4242" });
    await waitFor(() => started === 2);
    // The broker goes away under running jobs: their acks fail, the broker will redeliver them.
    await f.broker.close();
    release.open();
    await waitFor(() => warned.some((w) => w.includes("[JOBS_LEASE_LOST]")));
    await worker.close();
    expect(warned.filter((w) => w.includes("JOBS_LEASE_LOST"))).toHaveLength(1);
    expect(warned.join("\n")).toContain("[jobs] [worker] job charge");
    expect(warned.join("\n")).not.toContain("payload-secret");
  });
});

describe("logger: a given logger", () => {
  it("receives a broker's error from a real pino instance, with code, source and redacted error", async () => {
    const { logger, lines } = pinoLines();
    const broker = createMemoryBroker({ logger });
    try {
      await brokerError(broker, 2);
      await waitFor(() => lines.length === 2);
      // Every entry (a logger is not rate-limited), and nothing on the console.
      expect(errored).toEqual([]);
      const line = lines[0] as { level: number; code: string; source: string; msg: string; err: { message: string } };
      expect(line.level).toBe(50);
      expect(line.code).toBe("JOBS_BROKER_ERROR");
      expect(line.source).toBe("memory");
      expect(line.msg).toContain("[jobs] [memory] cannot reach redis://app:***@db.example.com");
      expect(line.err.message).toContain("db.example.com");
      expect(JSON.stringify(lines)).not.toContain(SECRET);
    } finally {
      await broker.close();
    }
  });

  it("works with console as the logger: (fields, message)", async () => {
    const broker = createMemoryBroker({ logger: console });
    try {
      await brokerError(broker, 2);
      await waitFor(() => errored.length === 2);
      expect(errored[0]).toContain('"code":"JOBS_BROKER_ERROR"');
      expect(errored[0]).toContain("[jobs] [memory] cannot reach");
      expect(errored.join("\n")).not.toContain(SECRET);
    } finally {
      await broker.close();
    }
  });

  it("takes warning entries at warn and skips info entries when the logger has no info()", () => {
    const calls: string[] = [];
    const logger: Logger = {
      warn: (fields, message) => calls.push(`warn ${fields.code} ${fields.source} ${message}`),
      error: (fields) => calls.push(`error ${fields.code}`),
    };
    const events = brokerEvents("redis", logger);
    events.emit("config-warning", { code: "JOBS_REDIS_EVICTION", message: "[jobs] [redis] maxmemory-policy is allkeys-lru" });
    events.emit("reconnected", {});
    events.emit("disconnected", { error: { name: "Error", message: "connect ECONNREFUSED 10.0.0.1:6379" } });
    expect(calls).toEqual([
      "warn JOBS_REDIS_EVICTION redis [jobs] [redis] maxmemory-policy is allkeys-lru",
      "warn JOBS_BROKER_DISCONNECTED redis [jobs] [redis] connection lost, reconnecting: connect ECONNREFUSED 10.0.0.1:6379",
    ]);
    expect(warned).toEqual([]);
  });

  it("reports a worker's internal error as JOBS_WORKER_ERROR with the job's identifiers only", () => {
    const { logger, lines } = pinoLines();
    const events = new Emitter<WorkerEventMap>(workerReporting(logger));
    const job = {
      id: "j1",
      name: "charge",
      queue: "billing",
      attempt: 2,
      maxAttempts: 5,
      priority: "normal",
      enqueuedAt: 1,
      runAt: 1,
      metadata: { tenant: "t" },
    } as const;
    events.emit("error", { error: { name: "Error", message: `ack failed on ${URL_WITH_PASSWORD}` }, job });
    expect(lines).toHaveLength(1);
    const line = lines[0] as { level: number; code: string; source: string; job: unknown; msg: string };
    expect(line).toMatchObject({ level: 50, code: "JOBS_WORKER_ERROR", source: "worker" });
    expect(line.job).toEqual({ id: "j1", name: "charge", queue: "billing", attempt: 2 });
    expect(line.msg).toContain("job charge j1");
    expect(JSON.stringify(line)).not.toContain(SECRET);
    expect(JSON.stringify(line)).not.toContain("tenant");
  });

  it("a worker's logger also receives its broker's entries, once even when the broker has the same logger", async () => {
    const { logger, lines } = pinoLines();
    const broker = createMemoryBroker({});
    const worker = createWorker({ broker, logger, queues: ["unused"] });
    createClient({ broker, logger });
    createAdmin({ broker, logger });
    try {
      await brokerError(broker);
      await waitFor(() => lines.length > 0);
      expect(lines.map((l) => `${String(l.code)} ${String(l.source)}`)).toEqual(["JOBS_BROKER_ERROR memory"]);
      expect(errored).toEqual([]);
    } finally {
      await worker.close();
      await broker.close();
    }

    const shared = pinoLines();
    const both = createMemoryBroker({ logger: shared.logger });
    const w = createWorker({ broker: both, logger: shared.logger, queues: ["unused"] });
    try {
      await brokerError(both);
      await waitFor(() => shared.lines.length > 0);
      expect(shared.lines).toHaveLength(1);
      await w.close();
      await brokerError(both);
      await waitFor(() => shared.lines.length > 1);
      expect(shared.lines.map((l) => l.code)).toEqual(["JOBS_BROKER_ERROR", "JOBS_BROKER_ERROR"]);
    } finally {
      await both.close();
    }
  });

  it("a client and a worker sharing a logger: one entry each time, and the client's still come after the worker closed", async () => {
    const { logger, lines } = pinoLines();
    const broker = createMemoryBroker({});
    const worker = createWorker({ broker, logger, queues: ["unused"] });
    const client = createClient({ broker, logger });
    try {
      await brokerError(broker);
      await waitFor(() => lines.length > 0);
      expect(lines).toHaveLength(1);
      await worker.close();
      await brokerError(broker);
      await waitFor(() => lines.length > 1);
      expect(lines.map((l) => l.code)).toEqual(["JOBS_BROKER_ERROR", "JOBS_BROKER_ERROR"]);
      expect(errored).toEqual([]);
      // The client is still in use here, so its forwarding is alive.
      expect(client.on).toBeTypeOf("function");
    } finally {
      await broker.close();
    }
  });

  it("a worker with a logger stops forwarding its broker's entries once closed", async () => {
    const { logger, lines } = pinoLines();
    const broker = createMemoryBroker({});
    const worker = createWorker({ broker, logger, queues: ["unused"] });
    await worker.close();
    try {
      await brokerError(broker);
      await waitFor(() => errored.length === 1);
      expect(lines).toEqual([]);
    } finally {
      await broker.close();
    }
  });

  it("rejects a logger without warn() and error(), naming the field", () => {
    const bad = { info: () => {} } as unknown as Logger;
    const broker = createMemoryBroker({ logger: false });
    for (const make of [
      () => createMemoryBroker({ logger: bad }),
      () => createWorker({ broker, logger: bad }),
      () => createClient({ broker, logger: bad }),
      () => createAdmin({ broker, logger: bad }),
    ]) {
      let error: unknown;
      try {
        make();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidOptionsError);
      expect((error as InvalidOptionsError).field).toBe("logger");
    }
    void broker.close();
  });
});
