// The README's quick start, kept here so that it type-checks and runs: pnpm --filter example-memory quick-start
import { createClient, createWorker, defineJob } from "@jobs/core";
import { createMemoryBroker, createMemoryStore } from "@jobs/memory";
import { z } from "zod";

const sendEmail = defineJob({
  name: "email.send",
  schema: z.object({ to: z.email(), subject: z.string() }),
  maxAttempts: 5,
});

const broker = createMemoryBroker();
const store = createMemoryStore(); // optional: keeps a record of every job (status, result, progress)
const mailer = {
  send: async (to: string, subject: string) => {
    console.log(`mail to ${to}: ${subject}`);
    return `sent to ${to}`;
  },
};
const worker = createWorker({ broker, store, context: { mailer } }).handle(sendEmail, ({ to, subject }, { context }) =>
  context.mailer.send(to, subject),
);
await worker.start();

const client = createClient({ broker, store });
const job = await client.enqueue(sendEmail, { to: "ada@example.com", subject: "Hi" }, { delay: "2s" });
console.log((await client.getJob(job.id))?.status); // scheduled
console.log(await job.result()); // sent to ada@example.com (the handler's return value)
await worker.close();
await broker.close();
