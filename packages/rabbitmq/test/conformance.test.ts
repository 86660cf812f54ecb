import {
  brokerUrlFromEnv,
  jobSemanticsFirstConnection,
  jobSemanticsRetries,
  jobSemanticsScheduling,
  runConformance,
  transportDelays,
  transportRestart,
  transportSettlement,
} from "@jobs/conformance";
import { afterAll, describe } from "vitest";
import { startPrivateRabbit, Tracker, uniquePrefix } from "./support.js";

/** Deleting every queue a conformance run declared (18 objects per queue, quorum ones through Raft) takes seconds on a loaded machine. */
const CLEAN_UP_MS = 120_000;

const url = brokerUrlFromEnv("JOBS_RABBITMQ_URL");
// Skipped suites are still collected (their factories probe capabilities): a placeholder URL keeps that harmless.
const PLACEHOLDER = "amqp://127.0.0.1:5672";

describe.skipIf(url === undefined)("rabbitmq [needs JOBS_RABBITMQ_URL]", () => {
  const u = new URL(url ?? PLACEHOLDER);
  const tracker = new Tracker(url ?? PLACEHOLDER, uniquePrefix("cf"));
  afterAll(() => tracker.cleanUp(), CLEAN_UP_MS);
  runConformance({
    name: "rabbitmq",
    createBroker: (ctx) => tracker.broker({}, ctx?.endpoint),
    endpoint: { host: u.hostname, port: Number(u.port || 5672) },
  });

  // Plain queues (priority emulated by core) and a 4-level ladder (1 s native limit): core's
  // per-level queues and its re-delay on receipt run on RabbitMQ too.
  const short = new Tracker(url ?? PLACEHOLDER, uniquePrefix("em"), { priority: "none", delayLevels: 4 });
  afterAll(() => short.cleanUp(), CLEAN_UP_MS);
  const emulated = {
    name: 'rabbitmq (priority: "none", 4-level ladder)',
    createBroker: () => short.broker(),
  };
  for (const group of [transportDelays, transportSettlement, jobSemanticsRetries, jobSemanticsScheduling]) group(emulated);

  // Quorum queues (one per priority level, RabbitMQ's own delivery count): the whole suite again.
  const quorum = new Tracker(url ?? PLACEHOLDER, uniquePrefix("qq"), { queueType: "quorum" });
  afterAll(() => quorum.cleanUp(), CLEAN_UP_MS);
  runConformance({
    name: 'rabbitmq (queueType: "quorum")',
    createBroker: (ctx) => quorum.broker({}, ctx?.endpoint),
    endpoint: { host: u.hostname, port: Number(u.port || 5672) },
  });
});

// Restart cases against a private node, killed with SIGKILL and restarted on its own directory.
const node = url === undefined ? undefined : await startPrivateRabbit();
afterAll(() => node?.stop());
describe.skipIf(node === undefined)("rabbitmq private node [needs JOBS_RABBITMQ_URL]", () => {
  const restartable = new Tracker(node?.url ?? PLACEHOLDER, uniquePrefix("restart"));
  transportRestart({
    name: "rabbitmq (private node, kill -9 and restart)",
    createBroker: () => restartable.broker(),
    restart: () => {
      const n = node as NonNullable<typeof node>;
      // RabbitMQ 3.10 keeps queue declarations in Mnesia, whose log reaches the disk a moment
      // later: a queue declared right before a kill -9 came back missing in 1 of 8 raw-amqplib
      // probes here, with the messages confirmed to it. Syncing that log first makes this case
      // measure what it names (accepted messages survive), not that window of the broker's
      // (see docs/adapters/rabbitmq.md, "Limits").
      n.ctl("eval", "mnesia:sync_log().");
      return n.restart("SIGKILL");
    },
  });
  // The same node, down while a new broker makes its first connection (a node of its own would
  // add a boot of several seconds to the run; this one is up already).
  const onPrivate = (): ReturnType<Tracker["broker"]> => restartable.broker({ connectTimeout: "2s" });
  jobSemanticsFirstConnection({
    name: "rabbitmq (private node, down at first)",
    createBroker: onPrivate,
    firstConnection: {
      createBroker: onPrivate,
      stop: () => (node as NonNullable<typeof node>).kill("SIGKILL"),
      start: () => (node as NonNullable<typeof node>).start(),
    },
  });
});

// The same in quorum mode. Opt-in (JOBS_RABBITMQ_QUORUM_RESTART=1) because RabbitMQ 3.10.8 here
// fails it, not the adapter: a quorum queue declared less than a few seconds before a kill -9
// comes back without a leader and empty (5 confirmed messages → 0, measured with raw amqplib;
// with 3 s between declaration and kill, or a clean stop, all 5 are kept). These cases declare
// their queues right before the kill.
const quorumRestart = node !== undefined && process.env.JOBS_RABBITMQ_QUORUM_RESTART === "1";
describe.skipIf(!quorumRestart)("rabbitmq private node, quorum queues [needs JOBS_RABBITMQ_QUORUM_RESTART=1]", () => {
  const quorum = new Tracker(node?.url ?? PLACEHOLDER, uniquePrefix("qq-restart"), { queueType: "quorum" });
  transportRestart({
    name: 'rabbitmq (queueType: "quorum", private node, kill -9 and restart)',
    createBroker: () => quorum.broker(),
    restart: async () => {
      const n = node as NonNullable<typeof node>;
      await n.restart("SIGKILL");
      // After that early kill the queue's single member stays a follower and never calls an
      // election (see docs/adapters/rabbitmq.md); a cluster's other members would elect a leader.
      n.ctl(
        "eval",
        "[ra:trigger_election(amqqueue:get_pid(Q)) || Q <- rabbit_amqqueue:list(), amqqueue:get_type(Q) =:= rabbit_quorum_queue].",
      );
    },
  });
});
