/**
 * NATS JetStream: @jobs/nats beside the raw JetStream client on the same server. Every session (and
 * every raw trial) gets a stream and subject prefix of its own, deleted when it closes.
 */
import { createNatsBroker } from "@jobs/nats";
import { AckPolicy, type JetStreamManager, jetstream, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Baseline, BenchAdapter } from "./adapters.js";
import { deferred, type Trial, within } from "./measure.js";
import { openRedisStore } from "./redis.js";
import { type BenchPayload, checkRan, type EnqueueParams, noop, ran, type ThroughputParams, uniqueQueue } from "./workload.js";

let streams = 0;

function url(): string {
  return process.env.JOBS_NATS_URL as string;
}

/** A stream and subject prefix no other session of this process uses. */
function topology(what: string): { readonly stream: string; readonly prefix: string } {
  streams++;
  return { stream: `BENCH_${what}_${process.pid}_${streams}`, prefix: `bench${what}${process.pid}n${streams}` };
}

async function connection(): Promise<{ nc: NatsConnection; jsm: JetStreamManager }> {
  const u = new URL(url());
  const nc = await connect({
    servers: `${u.hostname}:${u.port || 4222}`,
    ...(u.username === "" ? {} : { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) }),
  });
  return { nc, jsm: await jetstreamManager(nc) };
}

/**
 * Raw JetStream: a work-queue stream with one durable pull consumer, created untimed. The subject
 * and the consumer are named after a queue name of the same form as ours (`uniqueQueue`), as a raw
 * client with that queue would name them: the client parses every message's subject and ack
 * subject byte by byte, so a 4-character name against our 18-character one would bill ours for
 * the bench's naming (measured: about 6 % of the adapter's client instructions per message).
 */
async function rawTopology(): Promise<{ nc: NatsConnection; subject: string; stream: string; durable: string; dispose(): Promise<void> }> {
  const { stream, prefix } = topology("raw");
  const { nc, jsm } = await connection();
  const durable = uniqueQueue("proc");
  const subject = `${prefix}.${durable}`;
  await jsm.streams.add({ name: stream, subjects: [subject], retention: RetentionPolicy.Workqueue, storage: StorageType.File });
  await jsm.consumers.add(stream, { durable_name: durable, ack_policy: AckPolicy.Explicit, filter_subject: subject });
  return {
    nc,
    subject,
    stream,
    durable,
    async dispose() {
      await jsm.streams.delete(stream);
      await nc.close();
    },
  };
}

/** Raw publish: `js.publish` of the payload's JSON, awaiting each PubAck, `inflight` outstanding at once. */
async function rawEnqueueSingle(p: EnqueueParams): Promise<Trial> {
  const t = await rawTopology();
  const js = jetstream(t.nc);
  return {
    async run() {
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < p.jobs) {
          const i = next++;
          await js.publish(t.subject, JSON.stringify(p.payloads[i]));
        }
      };
      await Promise.all(Array.from({ length: p.inflight }, lane));
    },
    dispose: () => t.dispose(),
  };
}

/**
 * Raw pull consume + ack: the client's `consume()` with a buffer of `concurrency` messages (our
 * worker holds as many: prefetch = concurrency), parse, no-op, `ack()`; timed until all ran.
 */
async function rawProcess(p: ThroughputParams): Promise<Trial> {
  const t = await rawTopology();
  const js = jetstream(t.nc);
  const acks: Promise<unknown>[] = [];
  for (const payload of p.payloads) {
    acks.push(js.publish(t.subject, JSON.stringify(payload)));
    if (acks.length >= 1000) await Promise.all(acks.splice(0));
  }
  await Promise.all(acks);
  const before = ran.count;
  return {
    async run() {
      // Looked up inside the clock, as the worker's start() looks up its existing consumers.
      const consumer = await js.consumers.get(t.stream, t.durable);
      const done = deferred();
      let count = 0;
      const messages = await consumer.consume({
        max_messages: p.concurrency,
        callback: (m) => {
          void noop(m.json<BenchPayload>()).then(() => {
            m.ack();
            if (++count === p.jobs) done.resolve();
          });
        },
      });
      await within(done.promise, p.timeoutMs, "raw JetStream process");
      await messages.close();
    },
    async dispose() {
      checkRan(before, p.jobs, "raw JetStream process");
      await t.dispose();
    },
  };
}

/** The raw JetStream client (@nats-io/jetstream 3.4.0) on the same server and topology kind. */
const rawJetStream: Baseline = {
  name: "raw JetStream",
  kind: "raw-client",
  note: "@nats-io/jetstream 3.4.0: js.publish awaiting PubAck (no msgID) with the same in-flight count; subject and durable consumer named after a queue name of the same form as ours; consumer looked up (consumers.get) and pull consume() inside the clock, with a buffer of as many messages as the worker's concurrency (max_messages; the client's default is 100 whatever the handler does), msg.ack() after a no-op; work-queue stream, file storage",
  process: rawProcess,
  enqueueSingle: rawEnqueueSingle,
};

/** @jobs/nats on the server at JOBS_NATS_URL: a producer and a consumer connection, a stream per session. */
export const natsBenchAdapter: BenchAdapter = {
  name: "nats",
  description: "@jobs/nats on the NATS server at JOBS_NATS_URL: producer and worker connections, a work-queue stream per session",
  requiresEnv: "JOBS_NATS_URL",
  async open() {
    const names = topology("jobs");
    const producer = createNatsBroker({ url: url(), ...names });
    const consumer = createNatsBroker({ url: url(), ...names });
    return {
      producer,
      consumer,
      async close() {
        await Promise.all([consumer.close(), producer.close()]);
        const { nc, jsm } = await connection();
        await jsm.streams.delete(names.stream).catch(() => false);
        await nc.close();
      },
    };
  },
  // With a Redis store beside it, when JOBS_REDIS_URL says where.
  ...(process.env.JOBS_REDIS_URL === undefined ? {} : { openStore: openRedisStore }),
  baselines: [rawJetStream],
};
