// Signed and encrypted jobs (docs/security.md) on the in-memory broker: the same code runs on every
// broker. The client signs and encrypts, the worker checks and decrypts, and a message forged
// straight into the broker is dead-lettered with reason "signature", never run.
// pnpm --filter example-memory signed-jobs
import { randomBytes } from "node:crypto";
import { pathToFileURL } from "node:url";
import { type CodecOptions, createAdmin, createClient, createWorker, defineJob } from "@jobs/core";
import { createMemoryBroker } from "@jobs/memory";
import { z } from "zod";

/** What the example saw, for its test. */
export interface SignedJobsResult {
  /** The payloads the handler got, in clear. */
  readonly handled: readonly unknown[];
  /** The body the broker held for the enqueued job. */
  readonly brokerBody: string;
  /** The dead letters of the queue: reason, and the payload the admin decrypted (if any). */
  readonly deadLetters: readonly { reason: string; payload?: unknown }[];
}

const chargeCard = defineJob({
  name: "card.charge",
  queue: "payments",
  schema: z.object({ card: z.string(), cents: z.number().int() }),
});

export async function signedJobsMain(log: (line: string) => void = console.log): Promise<SignedJobsResult> {
  // In production: keys from your secret store, the same in every client, worker and admin
  // (e.g. openssl rand -base64 32). Several keys verify or decrypt; `current` signs or encrypts.
  const codec: CodecOptions = {
    signing: { keys: { s1: process.env.JOBS_SIGNING_KEY ?? randomBytes(32) }, current: "s1" },
    encryption: { keys: { e1: process.env.JOBS_ENCRYPTION_KEY ?? randomBytes(32) }, current: "e1" },
  };
  const broker = createMemoryBroker();
  const handled: unknown[] = [];
  const worker = createWorker({ broker, codec }).handle(chargeCard, (payload) => {
    handled.push(payload);
    log(`charged ${payload.cents} cents`);
  });
  try {
    const client = createClient({ broker, codec });
    // Read what the broker holds before the worker takes it: sealed and signed.
    const brokerBody = await new Promise<string>((resolve, reject) => {
      broker
        .consume("payments", { prefetch: 1, leaseMs: 10_000 }, (delivery) => {
          resolve(delivery.body);
          void delivery.defer(0);
        })
        .then((sub) => client.enqueue(chargeCard, { card: "4242 4242 4242 4242", cents: 1999 }).then(() => sub))
        .then((sub) => setTimeout(() => void sub.stop(), 0), reject);
    });
    log(`the broker holds: ${brokerBody.slice(0, 120)}…`);

    const done = new Promise<void>((resolve) => worker.on("job.succeeded", () => resolve()));
    const refused = new Promise<string>((resolve) => worker.on("job.dead-lettered", (e) => resolve(e.reason)));
    await worker.start();
    await done;

    // Anyone who can write to the broker, without the key:
    const now = Date.now();
    const forged = JSON.stringify({
      v: 1,
      id: "forged-1",
      name: "card.charge",
      queue: "payments",
      payload: { card: "attacker", cents: 100_000 },
      attempt: 1,
      maxAttempts: 1,
      priority: "normal",
      enqueuedAt: now,
      runAt: now,
      timeout: 30_000,
    });
    await broker.publish("payments", [{ id: "forged-1", body: forged, priority: 2, delayMs: 0, dedupe: false }]);
    log(`forged job: dead-lettered with reason ${await refused}, never run`);

    const admin = createAdmin({ broker, codec });
    const deadLetters = (await admin.listDeadLetters("payments")).map((d) =>
      d.payload === undefined ? { reason: d.reason } : { reason: d.reason, payload: d.payload },
    );
    return { handled, brokerBody, deadLetters };
  } finally {
    await worker.close();
    await broker.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await signedJobsMain();
