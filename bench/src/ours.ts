/**
 * The workloads run through our own client and worker, on any adapter: the adapter only supplies
 * brokers (see adapters.ts), everything else is the same code for every broker.
 */
import { randomBytes } from "node:crypto";
import {
  type Client,
  type CodecOptions,
  createClient,
  createWorker,
  defineJob,
  type JobDefinition,
  type TracingOptions,
  type Worker,
} from "@jobs/core";
import * as api from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import type { AdapterSession, BenchAdapter, BenchStore } from "./adapters.js";
import { deferred, percentile, type Trial, within } from "./measure.js";
import {
  type BenchPayload,
  checkRan,
  type EnqueueParams,
  type LatencyParams,
  makePayload,
  noop,
  ran,
  type ThroughputParams,
  uniqueQueue,
} from "./workload.js";

/**
 * Our client and worker: plain, with job records, with OpenTelemetry tracing on (`--otel`), with
 * signed jobs, or with signed and encrypted jobs (docs/security.md; `--codec` adds the last two).
 */
export type Variant = "ours" | "ours+store" | "ours+otel" | "ours+sign" | "ours+sign+enc";

/** The variants that use the codec. */
export const CODEC_VARIANTS: readonly Variant[] = ["ours+sign", "ours+sign+enc"];

const SIGNING = { keys: { s1: randomBytes(32) }, current: "s1" } as const;
const ENCRYPTION = { keys: { e1: randomBytes(32) }, current: "e1" } as const;

/** The codec of a variant's client and worker. */
function codecOf(variant: Variant): CodecOptions | undefined {
  if (variant === "ours+sign") return { signing: SIGNING };
  if (variant === "ours+sign+enc") return { signing: SIGNING, encryption: ENCRYPTION };
  return undefined;
}

let otel: TracingOptions | undefined;

/**
 * "ours+otel": tracing on client and worker through the OpenTelemetry SDK as an application sets it
 * up (a batch span processor, the AsyncLocalStorage context manager), exporting to nowhere: what
 * tracing costs the process, without an exporter's own cost.
 */
function tracingFor(variant: Variant): TracingOptions | undefined {
  if (variant !== "ours+otel") return undefined;
  if (otel === undefined) {
    const nowhere: SpanExporter = {
      export: (_spans, done) => done({ code: 0 }),
      shutdown: async () => {},
    };
    api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    otel = { api, tracerProvider: new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(nowhere)] }) };
  }
  return otel;
}

/**
 * The run's job store for "ours+store" (undefined for "ours"). Records are kept and pruned as in
 * production: the worker keeps the last 1,000 succeeded records and prunes every second.
 */
async function storeFor(adapter: BenchAdapter, variant: Variant): Promise<BenchStore | undefined> {
  if (variant !== "ours+store") return undefined;
  if (adapter.openStore === undefined) throw new Error(`[bench] ${adapter.name} has no store to pair with`);
  return adapter.openStore();
}

const RETAIN = { succeeded: { count: 1_000 } } as const;

/** The run's client: with the store for "ours+store", tracing for "ours+otel", the codec for the codec variants. */
function clientOf(session: AdapterSession, store: BenchStore | undefined, variant: Variant): Client {
  const tracing = tracingFor(variant);
  if (tracing !== undefined) return createClient({ broker: session.producer, tracing });
  const codec = codecOf(variant);
  return createClient({
    broker: session.producer,
    ...(store === undefined ? {} : { store: store.store }),
    ...(codec === undefined ? {} : { codec }),
  });
}

/** Defines the bench job on a queue of its own. */
function benchJob(queue: string): JobDefinition<BenchPayload, BenchPayload> {
  return defineJob<BenchPayload>({ name: "bench.noop", queue, maxAttempts: 1 });
}

/** Enqueues every payload with `enqueueMany`, `batch` at a time, each batch awaited before the next. */
async function enqueueInBatches(
  client: Client,
  job: JobDefinition<BenchPayload, BenchPayload>,
  payloads: readonly BenchPayload[],
  batch: number,
): Promise<void> {
  for (let start = 0; start < payloads.length; start += batch) {
    const items = [];
    const end = Math.min(payloads.length, start + batch);
    for (let i = start; i < end; i++) items.push({ job, payload: payloads[i] as BenchPayload });
    await client.enqueueMany(items);
  }
}

/**
 * A worker that resolves `done` once `jobs` jobs succeeded. Counting is one listener doing one
 * increment per job; the worker builds the event object only because someone listens, which any
 * application with metrics also pays.
 */
function countingWorker(
  session: AdapterSession,
  job: JobDefinition<BenchPayload, BenchPayload>,
  concurrency: number,
  jobs: number,
  store: BenchStore | undefined,
  variant: Variant,
): { worker: Worker<undefined>; done: Promise<void> } {
  const tracing = tracingFor(variant);
  const codec = codecOf(variant);
  const worker = createWorker({
    broker: session.consumer,
    concurrency,
    ...(tracing === undefined ? {} : { tracing }),
    ...(store === undefined ? {} : { store: store.store, retain: RETAIN, pruneEvery: "1s" }),
    ...(codec === undefined ? {} : { codec }),
  });
  worker.handle(job, noop);
  const finished = deferred();
  let succeeded = 0;
  worker.on("job.succeeded", () => {
    if (++succeeded === jobs) finished.resolve();
  });
  return { worker, done: finished.promise };
}

/** Enqueue throughput: one `enqueue` per job, `inflight` awaiting at once (1 = strictly sequential). */
export async function enqueueSingleTrial(adapter: BenchAdapter, p: EnqueueParams, variant: Variant = "ours"): Promise<Trial> {
  const session = await adapter.open();
  const store = await storeFor(adapter, variant);
  const queue = uniqueQueue("enq");
  const job = benchJob(queue);
  const client = clientOf(session, store, variant);
  return {
    async run() {
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < p.jobs) {
          const i = next++;
          await client.enqueue(job, p.payloads[i] as BenchPayload);
        }
      };
      const lanes: Promise<void>[] = [];
      for (let l = 0; l < p.inflight; l++) lanes.push(lane());
      await Promise.all(lanes);
    },
    async dispose() {
      await session.close([queue]);
      await store?.close();
    },
  };
}

/** Enqueue throughput: `enqueueMany` in batches of `batch`, one batch at a time. */
export async function enqueueBulkTrial(adapter: BenchAdapter, p: EnqueueParams, variant: Variant = "ours"): Promise<Trial> {
  const session = await adapter.open();
  const store = await storeFor(adapter, variant);
  const queue = uniqueQueue("bulk");
  const job = benchJob(queue);
  const client = clientOf(session, store, variant);
  return {
    run: () => enqueueInBatches(client, job, p.payloads, p.batch),
    async dispose() {
      await session.close([queue]);
      await store?.close();
    },
  };
}

/**
 * Process throughput: `jobs` jobs enqueued before the clock; timed from `worker.start()` until all
 * succeeded. The broker's consumer topology is created before the clock, as each raw baseline's is:
 * a worker is started on the empty queue and closed (on NATS that creates the durable consumers of
 * every priority level), so the timed `start()` finds them, as a restarted worker in production does.
 */
export async function processTrial(adapter: BenchAdapter, p: ThroughputParams, variant: Variant = "ours"): Promise<Trial> {
  const session = await adapter.open();
  const store = await storeFor(adapter, variant);
  const queue = uniqueQueue("proc");
  const job = benchJob(queue);
  const setup = countingWorker(session, job, p.concurrency, 0, store, variant).worker;
  await setup.start();
  await setup.close({ timeout: 0 });
  await enqueueInBatches(clientOf(session, store, variant), job, p.payloads, p.batch);
  const { worker, done } = countingWorker(session, job, p.concurrency, p.jobs, store, variant);
  const before = ran.count;
  return {
    async run() {
      await worker.start();
      await within(done, p.timeoutMs, `process ${p.jobs} jobs at concurrency ${p.concurrency}`);
    },
    async dispose() {
      checkRan(before, p.jobs, `ours ${p.jobs} jobs at concurrency ${p.concurrency}`);
      await worker.close({ timeout: 0 });
      await session.close([queue]);
      await store?.close();
    },
  };
}

/** Add+run: the worker is already running; timed from the first `enqueueMany` until all succeeded. */
export async function addRunTrial(adapter: BenchAdapter, p: ThroughputParams, variant: Variant = "ours"): Promise<Trial> {
  const session = await adapter.open();
  const store = await storeFor(adapter, variant);
  const queue = uniqueQueue("addrun");
  const job = benchJob(queue);
  const client = clientOf(session, store, variant);
  const { worker, done } = countingWorker(session, job, p.concurrency, p.jobs, store, variant);
  await worker.start();
  const before = ran.count;
  return {
    async run() {
      await enqueueInBatches(client, job, p.payloads, p.batch);
      await within(done, p.timeoutMs, `add+run ${p.jobs} jobs at concurrency ${p.concurrency}`);
    },
    async dispose() {
      checkRan(before, p.jobs, `ours ${p.jobs} jobs at concurrency ${p.concurrency}`);
      await worker.close({ timeout: 0 });
      await session.close([queue]);
      await store?.close();
    },
  };
}

/** Latency percentiles in ms, and how many jobs were measured. */
export interface LatencyResult {
  readonly samples: number;
  readonly offeredRate: number;
  readonly achievedRate: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/**
 * Enqueue→start latency at a fixed offered rate: a pacer enqueues single jobs on a 1 ms tick to
 * keep up with `rate`; each job's time is taken just before its `enqueue` call and again as the
 * handler starts (same process, same monotonic clock).
 */
export async function measureLatency(adapter: BenchAdapter, p: LatencyParams): Promise<LatencyResult> {
  const session = await adapter.open();
  const queue = uniqueQueue("lat");
  const job = benchJob(queue);
  const client = createClient({ broker: session.producer });
  const total = Math.max(1, Math.round((p.rate * p.durationMs) / 1000));
  const sentAt = new Float64Array(total);
  const latency = new Float64Array(total);
  let started = 0;
  const finished = deferred();
  const worker = createWorker({ broker: session.consumer, concurrency: p.concurrency });
  worker.handle(job, (payload) => {
    latency[payload.seq] = performance.now() - (sentAt[payload.seq] as number);
    if (++started === total) finished.resolve();
  });
  const failures: unknown[] = [];
  try {
    await worker.start();
    const begin = performance.now();
    let sent = 0;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const due = Math.min(total, Math.floor(((performance.now() - begin) * p.rate) / 1000) + 1);
        while (sent < due) {
          const seq = sent++;
          const payload = makePayload(seq);
          sentAt[seq] = performance.now();
          client.enqueue(job, payload).catch((error: unknown) => failures.push(error));
        }
        if (sent < total) setTimeout(tick, 1);
        else resolve();
      };
      tick();
    });
    const offeredMs = performance.now() - begin;
    await within(finished.promise, p.timeoutMs, `latency run (${started} of ${total} started)`);
    if (failures.length > 0) throw new Error(`[bench] ${failures.length} enqueues failed during the latency run`, { cause: failures[0] });
    const sorted = Array.from(latency).sort((a, b) => a - b);
    return {
      samples: total,
      offeredRate: p.rate,
      achievedRate: (total * 1000) / offeredMs,
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      max: sorted[sorted.length - 1] as number,
    };
  } finally {
    await worker.close({ timeout: 0 });
    await session.close([queue]);
  }
}
