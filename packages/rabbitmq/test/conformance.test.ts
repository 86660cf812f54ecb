import { brokerUrlFromEnv, runConformance, transportRestart } from "@jobs/conformance";
import { afterAll, describe } from "vitest";
import { startPrivateRabbit, Tracker, uniquePrefix } from "./support.js";

const url = brokerUrlFromEnv("JOBS_RABBITMQ_URL");

describe.skipIf(url === undefined)("rabbitmq [needs JOBS_RABBITMQ_URL]", () => {
  const u = new URL(url ?? "amqp://127.0.0.1:5672");
  const tracker = new Tracker(url ?? "", uniquePrefix("cf"));
  afterAll(() => tracker.cleanUp());
  runConformance({
    name: "rabbitmq",
    createBroker: (ctx) => tracker.broker({}, ctx?.endpoint),
    endpoint: { host: u.hostname, port: Number(u.port || 5672) },
  });
});

// Restart cases against a private node, killed with SIGKILL and restarted on its own directory.
const node = url === undefined ? undefined : await startPrivateRabbit();
describe.skipIf(node === undefined)("rabbitmq private node [needs JOBS_RABBITMQ_URL]", () => {
  const restartable = new Tracker(node?.url ?? "", uniquePrefix("restart"));
  afterAll(() => node?.stop());
  transportRestart({
    name: "rabbitmq (private node, kill -9 and restart)",
    createBroker: () => restartable.broker(),
    restart: () => (node as NonNullable<typeof node>).restart("SIGKILL"),
  });
});
