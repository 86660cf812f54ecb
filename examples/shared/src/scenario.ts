// The example scenario, identical on every broker: enqueue a mix of jobs, run them, report.
import { type Broker, createAdmin, createClient, createWorker } from "@jobs/core";
import { type AppContext, registerHandlers } from "./handlers.js";
import { chargeCard, resizeImage, sendReminder, sendWelcomeEmail } from "./jobs.js";

/** How the scenario reaches its broker: producer and worker use separate connections. */
export interface ScenarioOptions {
  /** Returns a new connection to the broker. */
  readonly connect: () => Broker | Promise<Broker>;
  /** Where lines go. @default console.log */
  readonly log?: (line: string) => void;
  /** Give up after this many ms. @default 30000 */
  readonly timeoutMs?: number;
  /** Called with the producer connection before any job is enqueued (e.g. to purge leftovers). */
  readonly prepare?: (broker: Broker) => Promise<void>;
}

/** What happened, for the smoke test. */
export interface ScenarioResult {
  readonly succeeded: number;
  readonly deadLettered: number;
  readonly retried: number;
  readonly firstImage: string | undefined;
}

const QUEUES = ["emails", "media", "payments"] as const;

/** Runs the scenario: resolves when every job succeeded or was dead-lettered. */
export async function runScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const producer = await options.connect();
  const consumer = await options.connect();
  await options.prepare?.(producer);
  const client = createClient({ broker: producer });
  const admin = createAdmin({ broker: producer });

  const sent: string[] = [];
  const context: AppContext = {
    mailer: {
      async send(to) {
        sent.push(to);
      },
    },
    log,
  };
  const worker = registerHandlers(createWorker({ broker: consumer, context, concurrency: 4 }));

  // Enqueue before the worker starts, so a backlog exists and priority decides the order.
  await client.enqueueMany([
    { job: resizeImage, payload: { imageId: "img-free-1", width: 320 }, options: { priority: "low" } },
    { job: resizeImage, payload: { imageId: "img-free-2", width: 320 }, options: { priority: "low" } },
    { job: resizeImage, payload: { imageId: "img-pro-1", width: 1024 }, options: { priority: "critical" } },
  ]);
  for (const [to, name] of [
    ["ada@example.com", "Ada"],
    ["grace@example.com", "Grace"],
    ["alan@example.com", "Alan"],
  ] as const) {
    await client.enqueue(sendWelcomeEmail, { to, name });
  }
  await client.enqueue(sendReminder, { userId: "u-42", text: "your trial ends soon" }, { delay: "500ms" });
  await client.enqueue(chargeCard, { orderId: "A-1001", cents: 4200, card: "ok" });
  await client.enqueue(chargeCard, { orderId: "A-1002", cents: 990, card: "declined" });
  const expectedSucceeded = 3 + 3 + 1 + 1;
  const expectedDead = 1;

  let succeeded = 0;
  let deadLettered = 0;
  let retried = 0;
  let firstImage: string | undefined;
  worker.on("job.started", ({ job }) => {
    if (job.name === resizeImage.name && firstImage === undefined) firstImage = job.priority;
  });
  worker.on("job.retrying", ({ job, delayMs }) => {
    retried++;
    log(`  -> ${job.name} ${job.id.slice(0, 8)} will retry in ${Math.round(delayMs)} ms`);
  });
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("scenario timed out")), options.timeoutMs ?? 30_000);
    const check = (): void => {
      if (succeeded >= expectedSucceeded && deadLettered >= expectedDead) {
        clearTimeout(timer);
        resolve();
      }
    };
    worker.on("job.succeeded", () => {
      succeeded++;
      check();
    });
    worker.on("job.dead-lettered", ({ job, reason }) => {
      deadLettered++;
      log(`  -> ${job?.name ?? "?"} ${job?.id.slice(0, 8) ?? ""} dead-lettered (${reason})`);
      check();
    });
  });

  await worker.start();
  try {
    await done;
  } finally {
    await worker.close();
  }
  for (const dead of await admin.listDeadLetters("payments")) {
    log(`dead letter in "payments": ${dead.name} after ${dead.attempt} attempts, last error: ${dead.error.message}`);
  }
  for (const queue of QUEUES) await admin.purge(queue);
  log(`welcome emails sent to: ${sent.join(", ")}`);
  await consumer.close();
  await producer.close();
  return { succeeded, deadLettered, retried, firstImage };
}

/** What every run of the scenario must end with: the smoke tests and the examples' tests check it. */
export const EXPECTED_SCENARIO: ScenarioResult = { succeeded: 8, deadLettered: 1, retried: 2, firstImage: "critical" };

/**
 * The scenario as a script (each example's `src/main.ts`): runs it, then `cleanup` whatever
 * happened, prints a summary, and with `smoke` checks the outcome (a non-zero exit code when it is off).
 */
export async function scenarioMain(
  options: ScenarioOptions & { readonly smoke: boolean; readonly cleanup?: () => Promise<void> },
): Promise<void> {
  let result: ScenarioResult;
  try {
    result = await runScenario(options);
  } finally {
    await options.cleanup?.();
  }
  console.log(
    `\n${result.succeeded} jobs succeeded, ${result.deadLettered} dead-lettered after ${result.retried} retries; first image job ran at priority "${result.firstImage}"`,
  );
  if (!options.smoke) return;
  const off = (Object.keys(EXPECTED_SCENARIO) as (keyof ScenarioResult)[]).filter((k) => result[k] !== EXPECTED_SCENARIO[k]);
  if (off.length === 0) {
    console.log("smoke: ok");
  } else {
    console.error("smoke: unexpected outcome", result);
    process.exitCode = 1;
  }
}
