// The README's quick start, kept here so that it type-checks and runs: pnpm --filter example-memory quick-start
import { createClient, createWorker, defineJob } from "@jobs/core";
import { createMemoryBroker } from "@jobs/memory";
import { z } from "zod";

const sendEmail = defineJob({
  name: "email.send",
  schema: z.object({ to: z.email(), subject: z.string() }),
  maxAttempts: 5,
});

const broker = createMemoryBroker();
const mailer = { send: async (to: string, subject: string) => console.log(`mail to ${to}: ${subject}`) };
const worker = createWorker({ broker, context: { mailer } }).handle(sendEmail, ({ to, subject }, { context }) =>
  context.mailer.send(to, subject),
);
await worker.start();

const client = createClient({ broker });
await client.enqueue(sendEmail, { to: "ada@example.com", subject: "Hi" }, { delay: "10s" });
await broker.drain({ delayedWithin: "15s", timeout: "20s" });
await worker.close();
await broker.close();
