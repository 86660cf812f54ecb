/**
 * R12 — broker configuration preflight (RELIABILITY.md d.3): every unsafe broker configuration in
 * the list emits its `config-warning` (or a typed error where the design refuses), and each
 * adapter's default configuration emits none. Unsafe settings live on private instances only.
 */
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { type PrivateServer, startPrivateRedis } from "@jobs/conformance";
import { createClient, createWorker, defineJob } from "@jobs/core";
import { physicalQueue, priorityLevel } from "@jobs/core/adapter";
import { rabbitmqCapabilities } from "@jobs/rabbitmq";
import { jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import amqp, { type Channel } from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AdapterName,
  type BrokerSpec,
  SQS_CREDENTIALS,
  selectedAdapters,
  startTarget,
  type Target,
  uniqueNamespace,
} from "../src/adapters.js";
import { TIMINGS } from "../src/config.js";
import { BrokerSet, queueName, Recorder, skipCase } from "../src/in-process.js";
import { type Bar, bar, writeReport } from "../src/report.js";

/** The NATS server version warning: nats-server < 2.10 has no sync_interval (Jepsen's lazy fsync). */
const NATS_FSYNC = /fsyncs JetStream files lazily/;

interface Observed {
  readonly warnings: string[];
  readonly error: { code: string; message: string } | undefined;
}

/**
 * Opens a broker on `spec`, enqueues one job (which runs every preflight), then one more round trip;
 * returns what it said. With `worker`, a worker that handles the job (with that `timeout`, or the
 * default) starts consuming on the same broker first.
 */
async function observe(
  spec: BrokerSpec,
  overrides: Record<string, unknown> = {},
  queue = queueName("pf"),
  worker?: { readonly timeout?: string },
): Promise<Observed> {
  const set = new BrokerSet(spec);
  const rec = new Recorder();
  try {
    const broker = set.open(overrides);
    rec.watchBroker(broker, "b");
    const job = defineJob<{ n: number }>({
      name: "r12.probe",
      queue,
      ...(worker?.timeout === undefined ? {} : { timeout: worker.timeout }),
    });
    let error: Observed["error"];
    try {
      if (worker !== undefined) await set.track(createWorker({ broker, concurrency: 1 }).handle(job, () => {})).start();
      await createClient({ broker }).enqueue(job, { n: 1 });
      await broker.counts(physicalQueue(queue, priorityLevel("normal"), broker.capabilities));
    } catch (e) {
      error = { code: String((e as { code?: unknown }).code), message: String((e as Error).message) };
    }
    return { warnings: rec.of("broker:config-warning").map((e) => (e.data as { message: string }).message), error };
  } finally {
    await set.close();
  }
}

/** One report per case: the expected warning (matching `pattern`) or typed error, and nothing else. */
function judge(
  test: string,
  adapter: AdapterName,
  o: Observed,
  want: { warning?: RegExp; errorCode?: string; ignore?: RegExp },
  figures: Record<string, unknown> = {},
  more: readonly Bar[] = [],
): void {
  const relevant = o.warnings.filter((w) => want.ignore === undefined || !want.ignore.test(w));
  const bars: Bar[] = [];
  if (want.warning !== undefined) {
    const hits = relevant.filter((w) => want.warning?.test(w)).length;
    bars.push(bar(`config-warning ${want.warning.source}`, hits, "= 1", hits === 1));
  } else if (want.errorCode === undefined) {
    bars.push(bar("config-warnings", relevant.length, "= 0", relevant.length === 0));
  }
  if (want.errorCode !== undefined)
    bars.push(bar("typed error", o.error?.code ?? "none", want.errorCode, o.error?.code === want.errorCode));
  else bars.push(bar("errors", o.error?.code ?? "none", "none", o.error === undefined));
  bars.push(...more);
  const report = writeReport({ test, adapter, seed: 0, figures: { warnings: o.warnings, error: o.error, ...figures }, bars });
  expect(report.verdict).toBe("pass");
}

describe.each(selectedAdapters())("R12 configuration preflight on %s", (adapter: AdapterName) => {
  let target: Target;
  const extra: PrivateServer[] = [];
  beforeAll(async () => {
    target = await startTarget(adapter, "r12");
  });
  afterAll(async () => {
    await Promise.allSettled(extra.map((s) => s.stop()));
    await target?.stop();
  });

  it(`R12-default the default configuration of ${adapter} emits no config-warning`, async () => {
    const o = await observe(target.spec);
    if (adapter !== "nats") {
      judge("R12-default", adapter, o, {});
      return;
    }
    // The machine's nats-server 2.9.10 predates sync_interval: that warning is right, and the only one allowed.
    const version = String((await natsInfo(target.spec.url)).version);
    const old = /^2\.[0-9]\./.test(version);
    const fsync = o.warnings.filter((w) => NATS_FSYNC.test(w)).length;
    const others = o.warnings.length - fsync;
    const report = writeReport({
      test: "R12-default",
      adapter,
      seed: 0,
      figures: { warnings: o.warnings, serverVersion: version },
      bars: [
        bar("config-warnings about the adapter's configuration", others, "= 0", others === 0),
        bar(`server fsync warning (server ${version})`, fsync, old ? "= 1" : "= 0", fsync === (old ? 1 : 0)),
        bar("errors", o.error?.code ?? "none", "none", o.error === undefined),
      ],
    });
    expect(report.verdict).toBe("pass");
  });

  if (adapter === "redis") {
    it("R12-redis-eviction maxmemory-policy allkeys-lru warns", async () => {
      const server = await startPrivateRedis(["--appendonly", "yes", "--maxmemory-policy", "allkeys-lru"]);
      extra.push(server);
      const o = await observe({ ...target.spec, url: `redis://127.0.0.1:${server.port}` });
      judge("R12-redis-eviction", adapter, o, { warning: /maxmemory-policy is "allkeys-lru"/ });
    });
    it("R12-redis-no-persistence neither AOF nor RDB warns", async () => {
      const server = await startPrivateRedis(["--appendonly", "no", "--maxmemory-policy", "noeviction"]);
      extra.push(server);
      const o = await observe({ ...target.spec, url: `redis://127.0.0.1:${server.port}` });
      judge("R12-redis-no-persistence", adapter, o, { warning: /AOF is off/ });
    });
  }

  if (adapter === "nats") {
    it("R12-nats-memory-storage a stream with memory storage warns", async () => {
      const spec = { ...target.spec, namespace: uniqueNamespace("r12mem") };
      await addStream(spec, StorageType.Memory, RetentionPolicy.Workqueue);
      const o = await observe(spec);
      judge("R12-nats-memory-storage", adapter, o, { warning: /keeps messages in memory/, ignore: NATS_FSYNC });
    });
    it("R12-nats-retention a stream that is not a work queue is refused with a typed error", async () => {
      const spec = { ...target.spec, namespace: uniqueNamespace("r12lim") };
      await addStream(spec, StorageType.File, RetentionPolicy.Limits);
      const o = await observe(spec);
      judge("R12-nats-retention", adapter, o, { errorCode: "invalid-options", ignore: NATS_FSYNC });
    });
  }

  if (adapter === "rabbitmq") {
    it("R12-rabbitmq-non-durable a work queue declared non-durable elsewhere is refused with a typed error", async () => {
      const queue = queueName("nd");
      const work = `${target.spec.namespace}.${queue}`;
      await withChannel(target.spec.url, (ch) => ch.assertQueue(work, { durable: false }));
      const o = await observe(target.spec, {}, queue);
      const stored = await withChannel(target.spec.url, async (ch) => (await ch.checkQueue(work)).messageCount);
      await deleteQueues(target.spec.url, [work, `${work}.dead`]);
      // Refused as a caller's mistake (InvalidOptionsError, definite, not retryable), never accepted.
      judge("R12-rabbitmq-non-durable", adapter, o, { errorCode: "invalid-options" }, { stored }, [
        bar("messages stored in the non-durable queue", stored, "= 0", stored === 0),
      ]);
    });
    it("R12-rabbitmq-persistent messages are always published persistent (no setting can turn it off)", async () => {
      const queue = queueName("ps");
      const set = new BrokerSet(target.spec);
      const conn = await amqp.connect(target.spec.url);
      try {
        const job = defineJob<{ n: number }>({ name: "r12.persistent", queue });
        await createClient({ broker: set.open() }).enqueue(job, { n: 1 });
        const ch = await conn.createChannel();
        const msg = await ch.get(`${target.spec.namespace}.${queue}`, { noAck: false });
        const mode = msg === false ? 0 : msg.properties.deliveryMode;
        if (msg !== false) ch.nack(msg, false, true);
        await ch.close();
        const report = writeReport({
          test: "R12-rabbitmq-persistent",
          adapter,
          seed: 0,
          figures: { deliveryMode: mode },
          bars: [bar("deliveryMode", mode, "= 2 (persistent)", mode === 2)],
        });
        expect(report.verdict).toBe("pass");
      } finally {
        await conn.close();
        await set.close();
      }
    });
    it("R12-rabbitmq-classic-vs-quorum a classic work queue where quorum is configured is refused with a typed error", async () => {
      const queue = queueName("cq");
      // queueType "quorum" means priority "none": the job goes to the physical queue of its level.
      const physical = physicalQueue(queue, priorityLevel("normal"), { ...rabbitmqCapabilities, priority: "none" });
      const work = `${target.spec.namespace}.${physical}`;
      // What a classic deployment left behind (durable, so only the queue type differs).
      await withChannel(target.spec.url, (ch) => ch.assertQueue(work, { durable: true, arguments: { "x-queue-type": "classic" } }));
      const o = await observe(target.spec, { queueType: "quorum" }, queue);
      const stored = await withChannel(target.spec.url, async (ch) => (await ch.checkQueue(work)).messageCount);
      await deleteQueues(target.spec.url, [work, `${work}.dead`]);
      judge("R12-rabbitmq-classic-vs-quorum", adapter, o, { errorCode: "invalid-options" }, { stored }, [
        bar("messages stored in the classic queue", stored, "= 0", stored === 0),
        bar(
          "error names the conflict",
          /inequivalent arg/.test(o.error?.message ?? "") ? "yes" : "no",
          "yes",
          /inequivalent arg/.test(o.error?.message ?? ""),
        ),
      ]);
    });
    it("R12-rabbitmq-consumer-timeout a job timeout above consumer_timeout warns once; the default timeout (equal to it) does not", async () => {
      // The target node runs RabbitMQ's default consumer_timeout (30 min), as the adapter's default consumerTimeout says.
      const over = await observe(target.spec, {}, queueName("ct"), { timeout: "45m" });
      const equal = await observe(target.spec, {}, queueName("cd"), {});
      const equalWarnings = equal.warnings.length;
      judge(
        "R12-rabbitmq-consumer-timeout",
        adapter,
        over,
        { warning: /a job timeout of 2700000 ms exceeds RabbitMQ's consumer_timeout \(1800000 ms/ },
        { jobTimeoutMs: 2_700_000, consumerTimeoutMs: 1_800_000, defaultTimeoutWarnings: equal.warnings },
        [
          bar("other config-warnings", over.warnings.length - 1, "= 0", over.warnings.length === 1),
          bar("config-warnings with the default job timeout (30 min)", equalWarnings, "= 0", equalWarnings === 0),
          bar("errors with the default job timeout", equal.error?.code ?? "none", "none", equal.error === undefined),
        ],
      );
    });
  }

  if (adapter === "sqs") {
    it("R12-sqs-max-receive-count a queue whose maxReceiveCount is below the crash-loop bound warns", async () => {
      const spec = { ...target.spec, namespace: uniqueNamespace("r12mrc") };
      const queue = queueName("mrc");
      await createSqsQueue(spec, queue, { maxReceiveCount: 3 });
      const o = await observe(spec, {}, queue);
      judge("R12-sqs-max-receive-count", adapter, o, { warning: /maxReceiveCount 3/ });
    });
    it("R12-sqs-message-size a queue with a smaller MaximumMessageSize warns", async () => {
      const spec = { ...target.spec, namespace: uniqueNamespace("r12mms") };
      const queue = queueName("mms");
      await createSqsQueue(spec, queue, { maximumMessageSize: 2_048 });
      const o = await observe(spec, {}, queue);
      judge("R12-sqs-message-size", adapter, o, { warning: /takes messages up to 2048 bytes/ });
    });
    it("R12-sqs-visibility a queue whose VisibilityTimeout is below the lease is harmless: the lease is set per receive", async () => {
      const spec = { ...target.spec, namespace: uniqueNamespace("r12vis") };
      const queue = queueName("vis");
      const visibility = await createSqsQueue(spec, queue, { visibilityTimeout: 1 });
      const set = new BrokerSet(spec);
      const rec = new Recorder();
      try {
        const job = defineJob<{ n: number }>({ name: "r12.vis", queue, maxAttempts: 1, timeout: 20_000 });
        for (const name of ["a", "b"]) {
          const broker = set.open();
          rec.watchBroker(broker, name);
          const w = set.track(createWorker({ broker, lease: TIMINGS.leaseMs, concurrency: 2 }));
          rec.watchWorker(w, name);
          w.handle(job, async (_p, ctx) => {
            rec.add({ kind: "start", id: ctx.job.id, source: name });
            await new Promise((r) => setTimeout(r, 3_000));
          });
          await w.start();
        }
        const { id } = await createClient({ broker: set.open() }).enqueue(job, { n: 1 });
        await rec.until(() => rec.of("job.succeeded", id).length > 0, 20_000, "R12 visibility job done");
        const starts = rec.of("start", id).length;
        const warnings = rec.of("broker:config-warning").length;
        const report = writeReport({
          test: "R12-sqs-visibility",
          adapter,
          seed: 0,
          figures: { queueVisibilityTimeout: visibility, jobMs: 3_000, starts, warnings },
          bars: [
            bar("redeliveries of a 3-s job on a 1-s VisibilityTimeout queue", starts - 1, "= 0", starts === 1),
            bar("config-warnings", warnings, "= 0", warnings === 0),
          ],
        });
        expect(report.verdict).toBe("pass");
      } finally {
        await set.close();
      }
    });
  }

  if (adapter === "memory")
    skipCase("R12-unsafe", adapter, "the memory broker has no broker configuration (in-process, never durable by design)");
});

async function natsInfo(url: string): Promise<{ version?: string }> {
  const nc = await connect({ servers: url });
  try {
    return nc.info ?? {};
  } finally {
    await nc.close();
  }
}

/** Creates the broker's stream beforehand, as an operator might have, with the given storage and retention. */
async function addStream(spec: BrokerSpec, storage: StorageType, retention: RetentionPolicy): Promise<void> {
  const nc = await connect({ servers: spec.url });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: spec.namespace.toUpperCase().replace(/[^A-Z0-9_]/g, "_"),
      subjects: [`${spec.namespace.replace(/[^A-Za-z0-9_-]/g, "_")}.>`],
      storage,
      retention,
      duplicate_window: 120_000 * 1e6,
    });
  } finally {
    await nc.close();
  }
}

/** Creates the SQS queue of `queue` at normal priority beforehand, as an operator might have. Returns its VisibilityTimeout. */
async function createSqsQueue(
  spec: BrokerSpec,
  queue: string,
  o: { maxReceiveCount?: number; maximumMessageSize?: number; visibilityTimeout?: number },
): Promise<string | undefined> {
  const sqs = new SQSClient({ endpoint: spec.url, region: "us-east-1", credentials: SQS_CREDENTIALS });
  try {
    const name = `${spec.namespace}-${queue}__p${priorityLevel("normal")}`;
    const attributes: Record<string, string> = {};
    if (o.maximumMessageSize !== undefined) attributes.MaximumMessageSize = String(o.maximumMessageSize);
    if (o.visibilityTimeout !== undefined) attributes.VisibilityTimeout = String(o.visibilityTimeout);
    if (o.maxReceiveCount !== undefined) {
      const dead = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dead` }));
      const arn = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dead.QueueUrl, AttributeNames: ["QueueArn"] }));
      attributes.RedrivePolicy = JSON.stringify({ deadLetterTargetArn: arn.Attributes?.QueueArn, maxReceiveCount: o.maxReceiveCount });
    }
    const made = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    const got = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: made.QueueUrl, AttributeNames: ["VisibilityTimeout"] }));
    return got.Attributes?.VisibilityTimeout;
  } finally {
    sqs.destroy();
  }
}

/** Runs `fn` on a channel of its own connection to RabbitMQ (the adapter's objects, as an operator sees them). */
async function withChannel<T>(url: string, fn: (ch: Channel) => Promise<T>): Promise<T> {
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createChannel();
    return await fn(ch);
  } finally {
    await conn.close();
  }
}

/** Deletes queues a RabbitMQ case made (a missing one is no error). */
function deleteQueues(url: string, queues: readonly string[]): Promise<void> {
  return withChannel(url, async (ch) => {
    for (const q of queues) await ch.deleteQueue(q);
  });
}
