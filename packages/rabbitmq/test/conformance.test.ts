import {
  brokerUrlFromEnv,
  jobSemanticsRetries,
  jobSemanticsScheduling,
  runConformance,
  transportDelays,
  transportRestart,
  transportSettlement,
} from "@jobs/conformance";
import { afterAll, describe } from "vitest";
import { startPrivateRabbit, Tracker, uniquePrefix } from "./support.js";

const url = brokerUrlFromEnv("JOBS_RABBITMQ_URL");
// Skipped suites are still collected (their factories probe capabilities): a placeholder URL keeps that harmless.
const PLACEHOLDER = "amqp://127.0.0.1:5672";

describe.skipIf(url === undefined)("rabbitmq [needs JOBS_RABBITMQ_URL]", () => {
  const u = new URL(url ?? PLACEHOLDER);
  const tracker = new Tracker(url ?? PLACEHOLDER, uniquePrefix("cf"));
  afterAll(() => tracker.cleanUp());
  runConformance({
    name: "rabbitmq",
    createBroker: (ctx) => tracker.broker({}, ctx?.endpoint),
    endpoint: { host: u.hostname, port: Number(u.port || 5672) },
  });

  // Plain queues (priority emulated by core) and a 4-level ladder (1 s native limit): core's
  // per-level queues and its re-delay on receipt run on RabbitMQ too.
  const short = new Tracker(url ?? PLACEHOLDER, uniquePrefix("em"), { priority: "none", delayLevels: 4 });
  afterAll(() => short.cleanUp());
  const emulated = {
    name: 'rabbitmq (priority: "none", 4-level ladder)',
    createBroker: () => short.broker(),
  };
  for (const group of [transportDelays, transportSettlement, jobSemanticsRetries, jobSemanticsScheduling]) group(emulated);
});

// Restart cases against a private node, killed with SIGKILL and restarted on its own directory.
const node = url === undefined ? undefined : await startPrivateRabbit();
describe.skipIf(node === undefined)("rabbitmq private node [needs JOBS_RABBITMQ_URL]", () => {
  const restartable = new Tracker(node?.url ?? PLACEHOLDER, uniquePrefix("restart"));
  afterAll(() => node?.stop());
  transportRestart({
    name: "rabbitmq (private node, kill -9 and restart)",
    createBroker: () => restartable.broker(),
    restart: () => (node as NonNullable<typeof node>).restart("SIGKILL"),
  });
});
