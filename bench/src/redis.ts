/**
 * The Redis entry of the bench: @jobs/redis beside BullMQ (the peer) and a raw ioredis reliable
 * queue (LPUSH, then LMOVE into a processing list and LREM once done: the pattern every Redis job
 * queue builds on). Everything runs on the Redis at JOBS_REDIS_URL.
 *
 * Run as a script, it also measures what each contender costs Redis per job (commands from
 * INFO commandstats, CPU from INFO cpu), processing `--jobs` jobs at concurrency 100:
 *
 *   node --conditions=@jobs/source --import tsx src/redis.ts --cost [--jobs 20000]
 */
import { createRedisBroker, createRedisStore, redisQueueKeys, redisStoreKeys } from "@jobs/redis";
import { type Job, Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import type { AdapterSession, Baseline, BenchAdapter, BenchStore } from "./adapters.js";
import { deferred, type Trial, within } from "./measure.js";
import {
  type BenchPayload,
  checkRan,
  type EnqueueParams,
  makePayloads,
  noop,
  ran,
  type ThroughputParams,
  uniqueQueue,
} from "./workload.js";

const PREFIX = "jobs-bench";

function redisUrl(): string {
  const url = process.env.JOBS_REDIS_URL;
  if (url === undefined || url === "") throw new Error("[bench] JOBS_REDIS_URL is not set");
  return url;
}

/** Opens a producer and a consumer broker, like two processes would. */
async function openRedis(): Promise<AdapterSession> {
  const url = redisUrl();
  const producer = createRedisBroker({ url, prefix: PREFIX });
  const consumer = createRedisBroker({ url, prefix: PREFIX });
  return {
    producer,
    consumer,
    async close(queues) {
      for (const queue of queues) await producer.purge(queue);
      await Promise.all([consumer.close(), producer.close()]);
      const redis = new Redis(url);
      // The dedupe window and the key counter outlive a purge on purpose; a bench run needs neither.
      for (const queue of queues) await redis.del(...Object.values(redisQueueKeys(queue, PREFIX)).flat());
      redis.disconnect();
    },
  };
}

/**
 * A Redis store at JOBS_REDIS_URL, under its own prefix, removed after the run: the Redis broker's
 * own server, and the store every other networked broker pairs with ("ours+store").
 */
export async function openRedisStore(): Promise<BenchStore> {
  const url = redisUrl();
  const prefix = `${PREFIX}-store-${process.pid}`;
  const store = createRedisStore({ url, prefix });
  return {
    store,
    async close() {
      await store.close();
      const redis = new Redis(url);
      try {
        const match = `${redisStoreKeys(prefix).base}*`;
        for await (const keys of redis.scanStream({ match, count: 1000 }) as AsyncIterable<string[]>) {
          if (keys.length > 0) await redis.del(...keys);
        }
      } finally {
        redis.disconnect();
      }
    },
  };
}

// --- BullMQ -----------------------------------------------------------------------------------

const BULL_PREFIX = "bench-bull";

interface BullSetup {
  readonly queue: Queue;
  readonly name: string;
  readonly connection: { host: string; port: number };
}

function bullSetup(): BullSetup {
  const { hostname, port } = new URL(redisUrl());
  const connection = { host: hostname, port: Number(port || 6379) };
  const name = uniqueQueue("bull");
  // removeOnComplete: completed jobs are deleted as ours are (BullMQ keeps them by default).
  const queue = new Queue(name, { connection, prefix: BULL_PREFIX, defaultJobOptions: { removeOnComplete: true, removeOnFail: true } });
  return { queue, name, connection };
}

async function bullAddAll(queue: Queue, payloads: readonly BenchPayload[], batch: number): Promise<void> {
  for (let start = 0; start < payloads.length; start += batch) {
    await queue.addBulk(payloads.slice(start, start + batch).map((data) => ({ name: "noop", data })));
  }
}

function bullWorker(s: BullSetup, concurrency: number, jobs: number): { worker: Worker; done: Promise<void> } {
  const finished = deferred();
  let completed = 0;
  const worker = new Worker(s.name, (job: Job<BenchPayload>) => noop(job.data), {
    connection: { ...s.connection, maxRetriesPerRequest: null },
    prefix: BULL_PREFIX,
    concurrency,
    autorun: false,
  });
  worker.on("completed", () => {
    if (++completed === jobs) finished.resolve();
  });
  return { worker, done: finished.promise };
}

async function bullDispose(s: BullSetup, worker?: Worker): Promise<void> {
  await worker?.close(true);
  await s.queue.obliterate({ force: true });
  await s.queue.close();
}

/** BullMQ: jobs added before the clock; timed from `worker.run()` until all completed. */
async function bullProcess(p: ThroughputParams): Promise<Trial> {
  const s = bullSetup();
  await bullAddAll(s.queue, p.payloads, p.batch);
  const { worker, done } = bullWorker(s, p.concurrency, p.jobs);
  await worker.waitUntilReady();
  const before = ran.count;
  return {
    async run() {
      void worker.run();
      await within(done, p.timeoutMs, "BullMQ process");
    },
    async dispose() {
      checkRan(before, p.jobs, "BullMQ process");
      await bullDispose(s, worker);
    },
  };
}

/** BullMQ: worker running; timed from the first `addBulk` until all completed. */
async function bullAddRun(p: ThroughputParams): Promise<Trial> {
  const s = bullSetup();
  const { worker, done } = bullWorker(s, p.concurrency, p.jobs);
  void worker.run();
  await worker.waitUntilReady();
  const before = ran.count;
  return {
    async run() {
      await bullAddAll(s.queue, p.payloads, p.batch);
      await within(done, p.timeoutMs, "BullMQ add+run");
    },
    async dispose() {
      checkRan(before, p.jobs, "BullMQ add+run");
      await bullDispose(s, worker);
    },
  };
}

async function bullEnqueueSingle(p: EnqueueParams): Promise<Trial> {
  const s = bullSetup();
  await s.queue.waitUntilReady();
  return {
    async run() {
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < p.jobs) await s.queue.add("noop", p.payloads[next++] as BenchPayload);
      };
      await Promise.all(Array.from({ length: p.inflight }, lane));
    },
    dispose: () => bullDispose(s),
  };
}

async function bullEnqueueBulk(p: EnqueueParams): Promise<Trial> {
  const s = bullSetup();
  await s.queue.waitUntilReady();
  return { run: () => bullAddAll(s.queue, p.payloads, p.batch), dispose: () => bullDispose(s) };
}

/** BullMQ 6.7 on the same Redis, removeOnComplete. */
export const bullmqBaseline: Baseline = {
  name: "BullMQ",
  kind: "peer",
  note: "BullMQ 6.7.0 (ioredis 6.0.0), Queue.add/addBulk, Worker with the same concurrency, removeOnComplete: true",
  process: bullProcess,
  addRun: bullAddRun,
  enqueueSingle: bullEnqueueSingle,
  enqueueBulk: bullEnqueueBulk,
};

// --- raw ioredis: reliable queue with LMOVE -----------------------------------------------------

interface RawSetup {
  readonly producer: Redis;
  readonly list: string;
  readonly processing: string;
}

function rawSetup(): RawSetup {
  const list = `bench-raw:${uniqueQueue("raw")}`;
  return { producer: new Redis(redisUrl()), list, processing: `${list}:processing` };
}

async function rawPushAll(s: RawSetup, payloads: readonly BenchPayload[], batch: number): Promise<void> {
  for (let start = 0; start < payloads.length; start += batch) {
    const pipeline = s.producer.pipeline();
    const end = Math.min(payloads.length, start + batch);
    for (let i = start; i < end; i++) pipeline.lpush(s.list, JSON.stringify(payloads[i]));
    await pipeline.exec();
  }
}

/**
 * `concurrency` loops, each on its own connection: BLMOVE list → processing (reliable: the job
 * stays in Redis until done), run the no-op on the parsed payload, LREM it from processing.
 */
function rawWorkers(s: RawSetup, concurrency: number, jobs: number): { start: () => void; done: Promise<void>; close: () => void } {
  const connections = Array.from({ length: concurrency }, () => new Redis(redisUrl(), { maxRetriesPerRequest: null }));
  const finished = deferred();
  let completed = 0;
  let stopped = false;
  const loop = async (redis: Redis): Promise<void> => {
    while (!stopped && completed < jobs) {
      const item = await redis.blmove(s.list, s.processing, "RIGHT", "LEFT", 1);
      if (item === null) continue;
      await noop(JSON.parse(item));
      await redis.lrem(s.processing, 1, item);
      if (++completed === jobs) finished.resolve();
    }
  };
  return {
    start: () => {
      for (const c of connections) loop(c).catch(() => {});
    },
    done: finished.promise,
    close: () => {
      stopped = true;
      for (const c of connections) c.disconnect();
    },
  };
}

async function rawDispose(s: RawSetup): Promise<void> {
  await s.producer.del(s.list, s.processing);
  s.producer.disconnect();
}

async function rawProcess(p: ThroughputParams): Promise<Trial> {
  const s = rawSetup();
  await rawPushAll(s, p.payloads, p.batch);
  const workers = rawWorkers(s, p.concurrency, p.jobs);
  const before = ran.count;
  return {
    async run() {
      workers.start();
      await within(workers.done, p.timeoutMs, "raw ioredis process");
    },
    async dispose() {
      checkRan(before, p.jobs, "raw ioredis process");
      workers.close();
      await rawDispose(s);
    },
  };
}

async function rawAddRun(p: ThroughputParams): Promise<Trial> {
  const s = rawSetup();
  const workers = rawWorkers(s, p.concurrency, p.jobs);
  workers.start();
  const before = ran.count;
  return {
    async run() {
      await rawPushAll(s, p.payloads, p.batch);
      await within(workers.done, p.timeoutMs, "raw ioredis add+run");
    },
    async dispose() {
      checkRan(before, p.jobs, "raw ioredis add+run");
      workers.close();
      await rawDispose(s);
    },
  };
}

async function rawEnqueueSingle(p: EnqueueParams): Promise<Trial> {
  const s = rawSetup();
  return {
    async run() {
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < p.jobs) await s.producer.lpush(s.list, JSON.stringify(p.payloads[next++]));
      };
      await Promise.all(Array.from({ length: p.inflight }, lane));
    },
    dispose: () => rawDispose(s),
  };
}

async function rawEnqueueBulk(p: EnqueueParams): Promise<Trial> {
  const s = rawSetup();
  return { run: () => rawPushAll(s, p.payloads, p.batch), dispose: () => rawDispose(s) };
}

/** Raw ioredis reliable queue (LPUSH; BLMOVE to a processing list; LREM when done). */
export const ioredisLmoveBaseline: Baseline = {
  name: "raw ioredis",
  kind: "raw-client",
  note: "ioredis 6.0.0 reliable queue: LPUSH (pipelined per batch), BLMOVE into a processing list and LREM, one connection per concurrency slot",
  process: rawProcess,
  addRun: rawAddRun,
  enqueueSingle: rawEnqueueSingle,
  enqueueBulk: rawEnqueueBulk,
};

/** @jobs/redis on the Redis at JOBS_REDIS_URL. */
export const redis: BenchAdapter = {
  name: "redis",
  description: "@jobs/redis: a producer and a consumer broker (two connections each) on the Redis at JOBS_REDIS_URL",
  requiresEnv: "JOBS_REDIS_URL",
  open: openRedis,
  openStore: openRedisStore,
  baselines: [bullmqBaseline, ioredisLmoveBaseline],
};

// --- cost per job on the Redis side (run this file with --cost) -------------------------------

interface RedisStats {
  /** Calls per command, scripts' inner calls included (Redis 7 counts them). */
  readonly calls: Map<string, number>;
  /** used_cpu_user + used_cpu_sys of the server, in ms. */
  readonly cpuMs: number;
}

async function redisStats(client: Redis): Promise<RedisStats> {
  const info = `${await client.info("commandstats")}\n${await client.info("cpu")}`;
  const calls = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(m[1] as string, Number(m[2]));
  const cpu = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? 0);
  return { calls, cpuMs: (cpu("used_cpu_user") + cpu("used_cpu_sys")) * 1000 };
}

/** Runs one trial and reports what it cost Redis per job: commands (all, and round trips of scripts or plain commands) and CPU. */
async function costOf(label: string, jobs: number, factory: () => Promise<Trial>, client: Redis): Promise<string> {
  const trial = await factory();
  const before = await redisStats(client);
  const started = performance.now();
  await trial.run();
  const wallMs = performance.now() - started;
  const after = await redisStats(client);
  await trial.dispose();
  const delta = new Map<string, number>();
  for (const [name, n] of after.calls) {
    const d = n - (before.calls.get(name) ?? 0);
    if (d > 0) delta.set(name, d);
  }
  delta.set("info", (delta.get("info") ?? 0) - 2);
  let all = 0;
  for (const n of delta.values()) all += n;
  const top = [...delta].sort((a, b) => b[1] - a[1]).slice(0, 6);
  const perJob = (n: number): string => (n / jobs).toFixed(2);
  return `| ${label} | ${Math.round((jobs * 1000) / wallMs).toLocaleString("en-US")} | ${perJob(all)} | ${perJob(
    (delta.get("evalsha") ?? 0) + (delta.get("eval") ?? 0),
  )} | ${(((after.cpuMs - before.cpuMs) * 1000) / jobs).toFixed(1)} | ${top.map(([c, n]) => `${c} ${perJob(n)}`).join(", ")} |`;
}

async function measureCosts(jobs: number): Promise<void> {
  const { enqueueBulkTrial, processTrial } = await import("./ours.js");
  const client = new Redis(redisUrl());
  const payloads = makePayloads(jobs);
  const enqueue: EnqueueParams = { jobs, inflight: 100, batch: 100, payloads };
  const process100: ThroughputParams = { jobs, concurrency: 100, batch: 100, payloads, timeoutMs: 300_000 };
  const rows = [
    await costOf("ours: enqueueMany × 100", jobs, () => enqueueBulkTrial(redis, enqueue), client),
    await costOf("BullMQ: addBulk × 100", jobs, () => bullEnqueueBulk(enqueue), client),
    await costOf("raw: pipelined LPUSH × 100", jobs, () => rawEnqueueBulk(enqueue), client),
    await costOf("ours: process, concurrency 100", jobs, () => processTrial(redis, process100), client),
    await costOf("ours+store: enqueueMany × 100", jobs, () => enqueueBulkTrial(redis, enqueue, "ours+store"), client),
    await costOf("ours+store: process, concurrency 100", jobs, () => processTrial(redis, process100, "ours+store"), client),
    await costOf("BullMQ: process, concurrency 100", jobs, () => bullProcess(process100), client),
    await costOf("raw: process, concurrency 100", jobs, () => rawProcess(process100), client),
  ];
  client.disconnect();
  console.log(
    [
      `Redis cost per job (${jobs} jobs each; commands counted by INFO commandstats, inner calls of scripts included; CPU from INFO cpu, whole server)`,
      "",
      "| workload | jobs/s | Redis commands/job | script calls/job | Redis CPU µs/job | top commands per job |",
      "| --- | ---: | ---: | ---: | ---: | --- |",
      ...rows,
    ].join("\n"),
  );
}

if (process.argv.includes("--cost")) {
  const at = process.argv.indexOf("--jobs");
  await measureCosts(at > 0 ? Number(process.argv[at + 1]) : 20_000);
}
