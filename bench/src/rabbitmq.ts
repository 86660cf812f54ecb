/**
 * The RabbitMQ entry of the bench: @jobs/rabbitmq beside raw amqplib doing the same work with no
 * job layer: persistent messages published on a confirm channel (a batch, then `waitForConfirms`),
 * and a consumer acking each message after the no-op at prefetch = concurrency. Both run on the
 * RabbitMQ at JOBS_RABBITMQ_URL, each on its own fresh queue.
 *
 * "ours" is the adapter's default (classic queues, native priority) unless
 * JOBS_BENCH_RABBITMQ_QUEUE=quorum or JOBS_BENCH_RABBITMQ_PRIORITY=none say otherwise. Beside it in
 * the same run: the adapter's other two modes (as contenders named "@jobs/rabbitmq …"), and raw
 * amqplib on a plain classic queue, on a priority queue and on a quorum queue, so that every mode
 * has a like-for-like raw baseline (same persistence, prefetch and queue type). Pick a subset with
 * `--baselines`.
 */
import { physicalQueues } from "@jobs/core/adapter";
import { createRabbitmqBroker, type RabbitmqBroker, type RabbitmqBrokerOptions } from "@jobs/rabbitmq";
import amqp, { type ChannelModel, type ConfirmChannel } from "amqplib";
import type { Baseline, BenchAdapter } from "./adapters.js";
import { deferred, type Trial, within } from "./measure.js";
import { enqueueBulkTrial, enqueueSingleTrial, processTrial } from "./ours.js";
import { openRedisStore } from "./redis.js";
import { type BenchPayload, checkRan, type EnqueueParams, noop, ran, type ThroughputParams, uniqueQueue } from "./workload.js";

const PREFIX = "jobs-bench.";

function rabbitUrl(): string {
  const url = process.env.JOBS_RABBITMQ_URL;
  if (url === undefined || url === "") throw new Error("[bench] JOBS_RABBITMQ_URL is not set");
  return url;
}

/** The adapter's modes. */
type Mode = Pick<RabbitmqBrokerOptions, "queueType" | "priority">;

const MODES = {
  classic: { queueType: "classic", priority: "native" },
  "classic-none": { queueType: "classic", priority: "none" },
  quorum: { queueType: "quorum", priority: "none" },
} as const satisfies Record<string, Mode>;

function describeMode(mode: Mode): string {
  return mode.queueType === "quorum"
    ? "quorum queues, one per priority level"
    : mode.priority === "none"
      ? 'classic queues, priority: "none" (one per level)'
      : "classic queues, native priority (x-max-priority)";
}

function modeFromEnv(): keyof typeof MODES {
  if (process.env.JOBS_BENCH_RABBITMQ_QUEUE === "quorum") return "quorum";
  return process.env.JOBS_BENCH_RABBITMQ_PRIORITY === "none" ? "classic-none" : "classic";
}

/** @jobs/rabbitmq in one mode: a producer and a consumer broker (two connections, like two processes). */
function rabbitmqAdapter(name: string, mode: Mode, baselines: () => readonly Baseline[]): BenchAdapter {
  return {
    // With a Redis store beside it, when JOBS_REDIS_URL says where.
    ...(process.env.JOBS_REDIS_URL === undefined ? {} : { openStore: openRedisStore }),
    name,
    description: `@jobs/rabbitmq, ${describeMode(mode)}, confirm channel, on the RabbitMQ at JOBS_RABBITMQ_URL`,
    requiresEnv: "JOBS_RABBITMQ_URL",
    async open() {
      const url = rabbitUrl();
      const producer: RabbitmqBroker = createRabbitmqBroker({ url, prefix: PREFIX, ...mode });
      const consumer: RabbitmqBroker = createRabbitmqBroker({ url, prefix: PREFIX, ...mode });
      return {
        producer,
        consumer,
        async close(queues) {
          await consumer.close();
          for (const queue of queues) for (const { name } of physicalQueues(queue, producer.capabilities)) await producer.deleteQueue(name);
          await producer.close();
        },
      };
    },
    get baselines() {
      return baselines();
    },
  };
}

/** Another mode of the adapter as a contender beside "ours". */
function modeContender(key: keyof typeof MODES): Baseline {
  const adapter = rabbitmqAdapter(`rabbitmq-${key}`, MODES[key], () => []);
  return {
    name: `@jobs/rabbitmq ${key}`,
    kind: "peer",
    note: `the adapter itself with ${describeMode(MODES[key])}`,
    process: (p) => processTrial(adapter, p),
    enqueueSingle: (p) => enqueueSingleTrial(adapter, p),
    enqueueBulk: (p) => enqueueBulkTrial(adapter, p),
  };
}

/** The RabbitMQ bench entry: ours in the mode the environment picks, its other modes and the raw baselines. */
export const rabbitmqBenchAdapter: BenchAdapter = rabbitmqAdapter("rabbitmq", MODES[modeFromEnv()], () => [
  ...(Object.keys(MODES) as (keyof typeof MODES)[]).filter((k) => k !== modeFromEnv()).map(modeContender),
  amqplibBaseline,
  amqplibPriorityBaseline,
  amqplibQuorumBaseline,
]);

// --- raw amqplib ------------------------------------------------------------------------------

interface Raw {
  readonly conn: ChannelModel;
  readonly ch: ConfirmChannel;
  readonly queue: string;
}

/** Queue arguments of the raw baselines: a plain classic queue, one ordered by five levels like the adapter's, or a quorum queue. */
type RawQueue = "plain" | "priority" | "quorum";

const RAW_QUEUE_ARGS: Record<RawQueue, Record<string, unknown>> = {
  plain: { "x-queue-type": "classic" },
  priority: { "x-queue-type": "classic", "x-max-priority": 4 },
  quorum: { "x-queue-type": "quorum" },
};

async function openRaw(what: string, kind: RawQueue): Promise<Raw> {
  const conn = await amqp.connect(rabbitUrl());
  const ch = await conn.createConfirmChannel();
  const queue = `${PREFIX}raw-${uniqueQueue(what)}`;
  await ch.assertQueue(queue, { durable: true, arguments: RAW_QUEUE_ARGS[kind] });
  return { conn, ch, queue };
}

async function closeRaw(raw: Raw): Promise<void> {
  await raw.ch.deleteQueue(raw.queue);
  await raw.conn.close();
}

/** Publishes every payload persistent, `batch` at a time, each batch confirmed before the next. */
async function publishConfirmed(raw: Raw, payloads: readonly BenchPayload[], batch: number): Promise<void> {
  for (let start = 0; start < payloads.length; start += batch) {
    const end = Math.min(payloads.length, start + batch);
    for (let i = start; i < end; i++) raw.ch.sendToQueue(raw.queue, Buffer.from(JSON.stringify(payloads[i])), { persistent: true });
    await raw.ch.waitForConfirms();
  }
}

/** Raw enqueue, bulk: batches of `batch` messages, each confirmed before the next. */
async function rawEnqueueBulk(p: EnqueueParams, kind: RawQueue): Promise<Trial> {
  const raw = await openRaw("enq-bulk", kind);
  return {
    run: () => publishConfirmed(raw, p.payloads, p.batch),
    dispose: () => closeRaw(raw),
  };
}

/** Raw enqueue, single: one publish per message, `inflight` awaiting their own confirm at once. */
async function rawEnqueueSingle(p: EnqueueParams, kind: RawQueue): Promise<Trial> {
  const raw = await openRaw("enq-single", kind);
  let next = 0;
  const publishOne = (payload: BenchPayload): Promise<void> =>
    new Promise((resolve, reject) => {
      raw.ch.sendToQueue(raw.queue, Buffer.from(JSON.stringify(payload)), { persistent: true }, (err: unknown) =>
        err ? reject(err) : resolve(),
      );
    });
  const lane = async (): Promise<void> => {
    while (next < p.payloads.length) await publishOne(p.payloads[next++] as BenchPayload);
  };
  return {
    async run() {
      await Promise.all(Array.from({ length: p.inflight }, lane));
    },
    dispose: () => closeRaw(raw),
  };
}

/** Raw consume: `jobs` messages published before the clock; timed from `consume` until the last ack. */
async function rawProcess(p: ThroughputParams, kind: RawQueue): Promise<Trial> {
  const raw = await openRaw("proc", kind);
  await publishConfirmed(raw, p.payloads, 1000);
  const consumer = await raw.conn.createChannel();
  const before = ran.count;
  const done = deferred();
  let handled = 0;
  return {
    async run() {
      await consumer.prefetch(p.concurrency);
      await consumer.consume(
        raw.queue,
        (msg) => {
          if (msg === null) return;
          void noop(msg.content).then(() => {
            consumer.ack(msg);
            if (++handled === p.jobs) done.resolve();
          });
        },
        { noAck: false },
      );
      await within(done.promise, p.timeoutMs, `raw amqplib process ${p.jobs}`);
    },
    async dispose() {
      checkRan(before, p.jobs, `raw amqplib process at prefetch ${p.concurrency}`);
      await consumer.close();
      await closeRaw(raw);
    },
  };
}

/** amqplib 2.3.1 with no job layer, on a plain classic queue. */
export const amqplibBaseline: Baseline = {
  name: "raw amqplib",
  kind: "raw-client",
  note: "amqplib 2.3.1: persistent sendToQueue on a confirm channel (waitForConfirms per batch, or a callback per message with `inflight` lanes); consume with prefetch = concurrency, ack after the no-op; durable classic queue",
  process: (p) => rawProcess(p, "plain"),
  enqueueSingle: (p) => rawEnqueueSingle(p, "plain"),
  enqueueBulk: (p) => rawEnqueueBulk(p, "plain"),
};

/**
 * The same raw client on a queue declared like the adapter's with native priority
 * (`x-max-priority: 4`): RabbitMQ's priority queues cost the broker more per message, so this is
 * the baseline that isolates what the adapter itself costs.
 */
export const amqplibPriorityBaseline: Baseline = {
  name: "raw amqplib (priority queue)",
  kind: "raw-client",
  note: "amqplib 2.3.1, the same as raw amqplib but on a durable classic queue with x-max-priority 4 (messages published without a priority)",
  process: (p) => rawProcess(p, "priority"),
  enqueueSingle: (p) => rawEnqueueSingle(p, "priority"),
  enqueueBulk: (p) => rawEnqueueBulk(p, "priority"),
};

/** The same raw client on a quorum queue, the baseline of the adapter's `queueType: "quorum"`. */
export const amqplibQuorumBaseline: Baseline = {
  name: "raw amqplib (quorum queue)",
  kind: "raw-client",
  note: "amqplib 2.3.1, the same as raw amqplib but on a quorum queue (x-queue-type: quorum)",
  process: (p) => rawProcess(p, "quorum"),
  enqueueSingle: (p) => rawEnqueueSingle(p, "quorum"),
  enqueueBulk: (p) => rawEnqueueBulk(p, "quorum"),
};
