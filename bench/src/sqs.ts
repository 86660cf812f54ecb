/**
 * The SQS entry: @jobs/sqs against the SQS at JOBS_SQS_ENDPOINT or, when it is not set, a
 * local-aws-sqs emulator in a child process (so its CPU is not billed to the bench process), beside
 * the raw @aws-sdk/client-sqs doing batched sends and Receive(10) + DeleteMessageBatch.
 *
 * SQS bills per request, so every client here counts its requests by operation and by who made
 * them; requests per job are printed to stderr when the process ends.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { createConnection } from "node:net";
import { pathToFileURL } from "node:url";
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { createAdmin } from "@jobs/core";
import { createSqsBroker } from "@jobs/sqs";
import type { Baseline, BenchAdapter } from "./adapters.js";
import { deferred, type Trial, within } from "./measure.js";
import { openRedisStore } from "./redis.js";
import { checkRan, type EnqueueParams, noop, ran, type ThroughputParams, uniqueQueue } from "./workload.js";

/** Long-poll wait: local-aws-sqs answers a poll only when the batch is full or the wait is over. */
const WAIT_SECONDS = 1;

/** Requests and messages counted for one trial (one session or raw queue). */
interface Tally {
  readonly who: string;
  readonly requests: Map<string, number>;
  sent: number;
  deleted: number;
}

/** Every finished trial's tally, reported when the process ends. */
const finished: Tally[] = [];
let counting = true;

const newTally = (who: string): Tally => ({ who, requests: new Map(), sent: 0, deleted: 0 });

let emulator: Promise<string> | undefined;
let child: ChildProcess | undefined;

/** JOBS_SQS_ENDPOINT, or the emulator (started once per process, on a port the OS picks). */
function endpoint(): Promise<string> {
  const configured = process.env.JOBS_SQS_ENDPOINT;
  if (configured !== undefined && configured !== "") return Promise.resolve(configured);
  emulator ??= new Promise<string>((resolve, reject) => {
    const entry = pathToFileURL(createRequire(import.meta.url).resolve("local-aws-sqs")).href;
    const script = `import(${JSON.stringify(entry)}).then((m) => m.createSqsServer({ port: 0, hostname: "127.0.0.1" })).then((s) => console.log("port " + s.address().port))`;
    const proc = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "ignore"] });
    child = proc;
    proc.once("error", reject);
    proc.once("exit", (code) => reject(new Error(`[bench] the SQS emulator exited (${code})`)));
    proc.stdout?.on("data", (chunk: Buffer) => {
      const port = /port (\d+)/.exec(chunk.toString())?.[1];
      if (port === undefined) return;
      // Ready once it accepts connections.
      const socket = createConnection({ host: "127.0.0.1", port: Number(port) }, () => {
        socket.destroy();
        // From now on the bench ends when its work does: the emulator is killed on exit, never waited for.
        proc.unref();
        (proc.stdout as unknown as { unref(): void } | null)?.unref();
        resolve(`http://127.0.0.1:${port}`);
      });
      socket.once("error", reject);
    });
  });
  return emulator;
}

process.once("exit", () => {
  child?.kill("SIGKILL");
});

/** A client whose requests (and the messages they move) are counted in `t`. */
function countedClient(url: string, t: Tally): SQSClient {
  const client = new SQSClient({
    endpoint: url,
    region: "us-east-1",
    credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
  });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const op = String(context.commandName ?? "?").replace(/Command$/, "");
      const active = counting;
      if (active) t.requests.set(op, (t.requests.get(op) ?? 0) + 1);
      const result = await next(args);
      const input = args.input as { Entries?: unknown[] };
      if (active && op === "SendMessageBatch") t.sent += input.Entries?.length ?? 0;
      if (active && op === "SendMessage") t.sent++;
      if (active && op === "DeleteMessageBatch") t.deleted += input.Entries?.length ?? 0;
      return result;
    },
    { step: "initialize", name: "benchRequestCounter" },
  );
  return client;
}

/** One line per trial: requests per message published (enqueue trials) or per message consumed (process trials). */
function describeTally(t: Tally): string {
  const n = (op: string): number => t.requests.get(op) ?? 0;
  const publish = n("SendMessageBatch") + n("SendMessage");
  const consume = n("ReceiveMessage") + n("DeleteMessageBatch") + n("ChangeMessageVisibilityBatch");
  const per = (requests: number, jobs: number): string => (jobs === 0 ? "–" : (requests / jobs).toFixed(3));
  return (
    `  ${t.who}: publish ${per(publish, t.sent)} req/job (${publish} requests, ${t.sent} messages); ` +
    `consume ${per(consume, t.deleted)} req/job (${n("ReceiveMessage")} receives, ${n("DeleteMessageBatch")} deletes, ` +
    `${n("ChangeMessageVisibilityBatch")} visibility changes, ${t.deleted} messages)`
  );
}

/** Prints every trial's requests per job, in the order the trials ran (warm-ups included). */
function reportRequests(): void {
  if (finished.length === 0) return;
  const head =
    "[bench] sqs requests per job, one line per trial in run order (warm-up first, then the measured runs of each cell); queue set-up and purges not counted:";
  process.stderr.write(`\n${head}\n${finished.map(describeTally).join("\n")}\n`);
}
process.once("beforeExit", reportRequests);

/** @jobs/sqs: a producer and a consumer broker, each with its own client. */
export const sqs: BenchAdapter = {
  name: "sqs",
  description: `@jobs/sqs (standard queues, waitTimeSeconds ${WAIT_SECONDS}) on the SQS at JOBS_SQS_ENDPOINT, or on local-aws-sqs 2.0.2 in a child process`,
  async open() {
    const url = await endpoint();
    const options = { waitTimeSeconds: WAIT_SECONDS, countsIncludeInFlight: process.env.JOBS_SQS_ENDPOINT === undefined } as const;
    const tally = newTally("ours");
    const producerClient = countedClient(url, tally);
    const consumerClient = countedClient(url, tally);
    const producer = createSqsBroker({ ...options, client: producerClient });
    const consumer = createSqsBroker({ ...options, client: consumerClient });
    return {
      producer,
      consumer,
      async close(queues) {
        await consumer.close();
        // Purging is clean-up, not work: it is not counted.
        counting = false;
        try {
          const admin = createAdmin({ broker: producer });
          for (const queue of queues) await admin.purge(queue);
        } finally {
          counting = true;
        }
        await producer.close();
        producerClient.destroy();
        consumerClient.destroy();
        finished.push(tally);
      },
    };
  },
  // With a Redis store beside it, when JOBS_REDIS_URL says where.
  ...(process.env.JOBS_REDIS_URL === undefined ? {} : { openStore: openRedisStore }),
  baselines: [rawBaseline()],
};

/** A fresh queue for a raw trial, its client, and clean-up. */
async function rawQueue(what: string): Promise<{ client: SQSClient; url: string; dispose(): Promise<void> }> {
  const tally = newTally("raw client-sqs");
  const client = countedClient(await endpoint(), tally);
  counting = false;
  const created = await client.send(new CreateQueueCommand({ QueueName: `raw-${uniqueQueue(what)}` })).finally(() => {
    counting = true;
  });
  const url = created.QueueUrl as string;
  return {
    client,
    url,
    async dispose() {
      counting = false;
      try {
        await client.send(new PurgeQueueCommand({ QueueUrl: url }));
      } finally {
        counting = true;
        client.destroy();
        finished.push(tally);
      }
    },
  };
}

const body = (payload: unknown): string => JSON.stringify({ payload });

/** SendMessageBatch of up to 10 bodies per request, all of `bodies` in parallel. */
async function sendAll(client: SQSClient, url: string, bodies: readonly string[]): Promise<void> {
  const requests: Promise<unknown>[] = [];
  for (let i = 0; i < bodies.length; i += 10) {
    const Entries = bodies.slice(i, i + 10).map((MessageBody, k) => ({ Id: String(k), MessageBody }));
    requests.push(
      client.send(new SendMessageBatchCommand({ QueueUrl: url, Entries })).then((out) => {
        if ((out.Failed ?? []).length > 0) throw new Error(`[bench] raw SendMessageBatch: ${out.Failed?.length} entries failed`);
      }),
    );
  }
  await Promise.all(requests);
}

/** The raw client: what an application writing SQS calls by hand would do, no job layer. */
function rawBaseline(): Baseline {
  return {
    name: "raw client-sqs",
    kind: "raw-client",
    note: `@aws-sdk/client-sqs 3.1169.0: SendMessage per job (single), SendMessageBatch × 10 entries with a whole enqueueMany-sized chunk in flight (bulk), ceil(concurrency / 10) loops of ReceiveMessage(10, wait ${WAIT_SECONDS} s) + handler + DeleteMessageBatch (process); same emulator, same run`,
    async enqueueSingle(p: EnqueueParams): Promise<Trial> {
      const q = await rawQueue("single");
      const bodies = p.payloads.map(body);
      return {
        async run() {
          let next = 0;
          const lane = async (): Promise<void> => {
            while (next < p.jobs) {
              const i = next++;
              await q.client.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: bodies[i] as string }));
            }
          };
          await Promise.all(Array.from({ length: p.inflight }, lane));
        },
        dispose: () => q.dispose(),
      };
    },
    async enqueueBulk(p: EnqueueParams): Promise<Trial> {
      const q = await rawQueue("bulk");
      const bodies = p.payloads.map(body);
      return {
        async run() {
          for (let i = 0; i < bodies.length; i += p.batch) await sendAll(q.client, q.url, bodies.slice(i, i + p.batch));
        },
        dispose: () => q.dispose(),
      };
    },
    async process(p: ThroughputParams): Promise<Trial> {
      const q = await rawQueue("proc");
      await sendAll(q.client, q.url, p.payloads.map(body));
      const before = ran.count;
      let deleted = 0;
      let failure: unknown;
      const loops = Math.max(1, Math.ceil(p.concurrency / 10));
      const abort = new AbortController();
      const finished = deferred();
      const loop = async (): Promise<void> => {
        while (deleted < p.jobs && !abort.signal.aborted) {
          const input = { QueueUrl: q.url, MaxNumberOfMessages: 10, WaitTimeSeconds: WAIT_SECONDS, VisibilityTimeout: 60 };
          const messages = (await q.client.send(new ReceiveMessageCommand(input), { abortSignal: abort.signal })).Messages ?? [];
          if (messages.length === 0) continue;
          await Promise.all(messages.map((m) => noop(JSON.parse(m.Body as string))));
          const Entries = messages.map((m, k) => ({ Id: String(k), ReceiptHandle: m.ReceiptHandle as string }));
          await q.client.send(new DeleteMessageBatchCommand({ QueueUrl: q.url, Entries }));
          deleted += messages.length;
          if (deleted >= p.jobs) finished.resolve();
        }
      };
      return {
        async run() {
          // Done when every job ran and was deleted; polls still waiting are then cut short.
          const running = Array.from({ length: loops }, () =>
            loop().catch((error: unknown) => {
              if (!abort.signal.aborted) failure ??= error;
              finished.resolve();
            }),
          );
          await within(finished.promise, p.timeoutMs, `raw process ${p.jobs} jobs`);
          abort.abort();
          await Promise.all(running);
          if (failure !== undefined) throw new Error("[bench] raw client-sqs process failed", { cause: failure });
        },
        async dispose() {
          checkRan(before, p.jobs, `raw client-sqs ${p.jobs} jobs at concurrency ${p.concurrency}`);
          await q.dispose();
        },
      };
    },
  };
}
