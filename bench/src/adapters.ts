/**
 * The adapter registry. An entry says how to open brokers for one run and which baselines run the
 * same workload beside ours: peers (BullMQ next to redis, p-queue next to memory) and the raw
 * client (ioredis LPUSH/BRPOP, amqplib, …). The harness (main.ts, ours.ts) is the same for all.
 *
 * To add an adapter, add one entry:
 *
 * ```ts
 * redis: {
 *   name: "redis",
 *   description: "@jobs/redis on the Redis at JOBS_REDIS_URL",
 *   requiresEnv: "JOBS_REDIS_URL",
 *   async open() {
 *     const url = process.env.JOBS_REDIS_URL as string;
 *     const producer = createRedisBroker({ url });
 *     const consumer = createRedisBroker({ url });
 *     return { producer, consumer, async close(queues) { for (const q of queues) await producer.purge(q); await Promise.all([producer.close(), consumer.close()]); } };
 *   },
 *   baselines: [bullmqBaseline, ioredisListBaseline],
 * },
 * ```
 *
 * A baseline implements the workloads it can (`process`, `addRun`, `enqueueSingle`,
 * `enqueueBulk`), each as a factory of trials: set-up untimed, `run()` timed, `dispose()` untimed.
 */
import type { Broker, JobStore } from "@jobs/core";
import { createMemoryBroker, createMemoryServer, createMemoryStore } from "@jobs/memory";
import type { Trial } from "./measure.js";
import { natsBenchAdapter } from "./nats.js";
import { fastqBaseline, pqueueBaseline } from "./peers.js";
import { rabbitmqBenchAdapter } from "./rabbitmq.js";
import { redis } from "./redis.js";
import { sqs } from "./sqs.js";
import type { EnqueueParams, ThroughputParams } from "./workload.js";

/** The brokers of one run: publish through one, consume through the other, like separate processes would. */
export interface AdapterSession {
  /** Broker the client publishes through. */
  readonly producer: Broker;
  /** Broker the worker consumes through (may be the same object where the adapter needs it). */
  readonly consumer: Broker;
  /** Purge the run's queues and close both brokers. */
  close(queues: readonly string[]): Promise<void>;
}

/** A job store for one run, and how to remove what it kept. */
export interface BenchStore {
  readonly store: JobStore;
  close(): Promise<void>;
}

/** Another way of doing the same work, measured in the same run. */
export interface Baseline {
  /** Short name for table headers, e.g. "p-queue", "BullMQ", "raw ioredis". */
  readonly name: string;
  /** `peer`: another job/queue library; `raw-client`: the broker's own client with no job layer. */
  readonly kind: "peer" | "raw-client";
  /** One line with versions and how it is driven, printed under the tables. */
  readonly note: string;
  /** `jobs` no-op tasks ready before the clock; timed until all ran. */
  readonly process?: (p: ThroughputParams) => Promise<Trial>;
  /** Timed from the first add until all `jobs` tasks ran. */
  readonly addRun?: (p: ThroughputParams) => Promise<Trial>;
  /** Single enqueues, `inflight` awaiting at once. */
  readonly enqueueSingle?: (p: EnqueueParams) => Promise<Trial>;
  /** Bulk enqueues of `batch` items. */
  readonly enqueueBulk?: (p: EnqueueParams) => Promise<Trial>;
}

/** One adapter under test. */
export interface BenchAdapter {
  /** Name used by `--adapter`. */
  readonly name: string;
  /** One line for the report. */
  readonly description: string;
  /** Environment variable that must be set (the broker's URL); the adapter is skipped, saying so, when it is not. */
  readonly requiresEnv?: string;
  /** Fresh brokers for one run. */
  open(): Promise<AdapterSession>;
  /**
   * A fresh job store for one run of "ours+store" (the same broker, plus job records kept and
   * pruned); absent when the adapter has no store to pair with here.
   */
  openStore?(): Promise<BenchStore>;
  /** Peers and raw clients measured beside it. */
  readonly baselines: readonly Baseline[];
}

/** The in-memory broker: two brokers sharing one server, as a producer and a worker connection. */
const memory: BenchAdapter = {
  name: "memory",
  description: "@jobs/memory: two brokers sharing one in-process server (producer and worker connections)",
  async open() {
    const server = createMemoryServer();
    const producer = createMemoryBroker({ server });
    const consumer = createMemoryBroker({ server });
    return {
      producer,
      consumer,
      async close(queues) {
        for (const queue of queues) await producer.purge(queue);
        await Promise.all([consumer.close(), producer.close()]);
      },
    };
  },
  async openStore() {
    const store = createMemoryStore();
    return { store, close: () => store.close() };
  },
  baselines: [pqueueBaseline, fastqBaseline],
};

/** Every adapter the harness knows, by `--adapter` name. */
export const adapters: Readonly<Record<string, BenchAdapter>> = {
  memory,
  nats: natsBenchAdapter,
  rabbitmq: rabbitmqBenchAdapter,
  redis,
  sqs,
};
