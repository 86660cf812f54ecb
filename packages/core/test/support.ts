/**
 * Shared set-up of core's behaviour tests, which run on the real in-process broker. `@jobs/memory`
 * resolves to memory's sources through a test-only alias (root vitest.config.ts and this package's
 * tsconfig.json; see docs/architecture.md, "Where core's tests live").
 */
import { createMemoryBroker, type MemoryBroker, type MemoryBrokerOptions } from "@jobs/memory";
import { expect, onTestFinished } from "vitest";
import { type DeadLetter, decodeEnvelope, type Envelope } from "../src/adapter/index.js";
import {
  type Client,
  createClient,
  createWorker,
  defineJob,
  InvalidOptionsError,
  type JobDefinition,
  type JobOptions,
  WORKER_EVENTS,
  type Worker,
  type WorkerOptions,
} from "../src/index.js";
import { waitFor } from "../src/testing/index.js";

/** The error `promise` rejects with; fails the test if it resolves or rejects with something else than an Error. */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    return error as Error;
  }
  throw new Error("expected the promise to reject");
}

/** The field named by the InvalidOptionsError `promise` rejects with. */
export async function invalidField(promise: Promise<unknown>): Promise<string> {
  const error = await rejection(promise);
  expect(error).toBeInstanceOf(InvalidOptionsError);
  return (error as InvalidOptionsError).field;
}

/** Retries at once: the tests of retries need no wait between attempts. */
export const noDelay = { type: "fixed", delay: 0 } as const;

let counter = 0;

/** A queue name no other test uses (1-63 characters, no "__"). */
export function uniqueQueue(label: string): string {
  counter++;
  return `${label.slice(0, 30)}-${process.pid}-${counter}`;
}

/** Brokers and workers created through it are closed when the current test finishes. */
export interface Scope {
  broker(options?: MemoryBrokerOptions): MemoryBroker;
  client(broker: MemoryBroker, maxPayloadBytes?: number): Client;
  worker<Ctx = undefined>(options: WorkerOptions<Ctx>): Worker<Ctx>;
}

export function scope(): Scope {
  const brokers: MemoryBroker[] = [];
  const workers: Worker<unknown>[] = [];
  onTestFinished(async () => {
    // Workers first: a closing worker hands its jobs back to a broker that is still open.
    await Promise.all(workers.map((w) => w.close({ timeout: 0 })));
    await Promise.all(brokers.map((b) => b.close()));
  });
  return {
    broker(options = {}) {
      const broker = createMemoryBroker(options);
      brokers.push(broker);
      return broker;
    },
    client(broker, maxPayloadBytes) {
      return createClient(maxPayloadBytes === undefined ? { broker } : { broker, maxPayloadBytes });
    },
    worker<Ctx>(options: WorkerOptions<Ctx>): Worker<Ctx> {
      const worker = createWorker(options);
      workers.push(worker as Worker<unknown>);
      return worker;
    },
  };
}

/** What most cases start from: a broker, a queue of their own, a client, and builders of jobs and workers on them. */
export interface Fixture {
  /** For more brokers, clients and workers, closed when the test ends too. */
  readonly scope: Scope;
  /** A memory broker, closed when the test ends. */
  readonly broker: MemoryBroker;
  /** A queue no other test uses. */
  readonly queue: string;
  /** A client of `broker`. */
  readonly client: Client;
  /** A job definition on `queue`. */
  job<P = unknown>(name: string, options?: Omit<JobOptions, "name" | "queue" | "schema">): JobDefinition<P, P>;
  /** A worker of `broker` (given options add to it), closed when the test ends. */
  worker<Ctx = undefined>(options?: Partial<WorkerOptions<Ctx>>): Worker<Ctx>;
}

/** A fixture whose queue name starts with `label` and whose broker is made with `options`. */
export function fixture(label: string, options: MemoryBrokerOptions = {}): Fixture {
  const s = scope();
  const broker = s.broker(options);
  const queue = uniqueQueue(label);
  return {
    scope: s,
    broker,
    queue,
    client: s.client(broker),
    job: <P>(name: string, jobOptions = {}) => defineJob<P>({ name, queue, ...jobOptions }),
    worker: <Ctx>(workerOptions: Partial<WorkerOptions<Ctx>> = {}) => s.worker<Ctx>({ broker, ...workerOptions }),
  };
}

/** One line per worker event, "event:attempt", grouped by job id. */
export function eventLog(worker: Pick<Worker<unknown>, "on">): Map<string, string[]> {
  const log = new Map<string, string[]>();
  // Every job transition; "error" is not about one job.
  for (const name of WORKER_EVENTS.filter((n) => n !== "error")) {
    worker.on(name, (event) => {
      const job = (event as { job?: { id: string; attempt: number } }).job;
      const id = job?.id ?? "?";
      const list = log.get(id) ?? [];
      list.push(`${name}:${job?.attempt ?? "-"}`);
      log.set(id, list);
    });
  }
  return log;
}

/** A promise with its resolve function, to hold handlers until the test lets them go. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Resolves once the handler's signal aborts. */
export function aborted(signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}

/** Reads the next ready message of a physical queue through a consumer of its own, then puts it back. */
export async function peek(broker: MemoryBroker, queue: string): Promise<Envelope> {
  let resolve!: (body: string) => void;
  const taken = new Promise<string>((r) => {
    resolve = r;
  });
  const subscription = await broker.consume(queue, { prefetch: 1, leaseMs: 60_000 }, (delivery) => {
    resolve(delivery.body);
    delivery.defer(0).catch(() => {});
  });
  try {
    return decodeEnvelope(await taken, Number.POSITIVE_INFINITY);
  } finally {
    await subscription.stop();
  }
}

/**
 * Hands `messages` messages of the queue to a consumer of its own connection that then dies (closes
 * it without settling), as a crashing worker process would; resolves with their delivery counts.
 */
export async function deliverAndDie(broker: MemoryBroker, queue: string, messages = 1): Promise<number[]> {
  const doomed = createMemoryBroker({ server: broker.server });
  const counts: number[] = [];
  await new Promise<void>((resolve) => {
    void doomed.consume(queue, { prefetch: messages, leaseMs: 60_000 }, (delivery) => {
      if (counts.push(delivery.deliveryCount) === messages) void doomed.close().then(resolve);
    });
  });
  return counts;
}

/** Waits until `queue` holds at least `count` dead letters, and returns them. */
export async function deadLetters(broker: MemoryBroker, queue: string, count: number): Promise<DeadLetter[]> {
  return waitFor(
    async () => {
      const list = await broker.listDeadLetters(queue, { limit: 100 });
      return list.length >= count ? list : undefined;
    },
    { message: `waiting for ${count} dead letter(s) in ${queue}` },
  );
}

/** A valid envelope of attempt 1 on `queue`, with the given fields replaced. */
export function rawEnvelope(queue: string, overrides: Partial<Envelope> = {}): Envelope {
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

/** Publishes `body` as it is, bypassing the client (for bytes a client would never send). */
export async function publishRaw(broker: MemoryBroker, queue: string, body: string, id: string = crypto.randomUUID()): Promise<void> {
  const [outcome] = await broker.publish(queue, [{ id, body, priority: 2, delayMs: 0, dedupe: false }]);
  expect(outcome).toEqual({ ok: true, duplicate: false });
}
