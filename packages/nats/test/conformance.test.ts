import {
  brokerUrlFromEnv,
  jobSemanticsFirstConnection,
  jobSemanticsScheduling,
  type PrivateServer,
  runConformance,
  transportDelays,
  transportRestart,
} from "@jobs/conformance";
import { afterAll, describe, it } from "vitest";
import { createNatsBroker } from "../src/index.js";
import { deleteStreams, endpointOf, startPrivateNats, uniqueTopology } from "./support.js";

const url = brokerUrlFromEnv("JOBS_NATS_URL");

if (url === undefined) {
  describe.skip("nats [needs JOBS_NATS_URL]", () => {
    it("conformance", () => {});
  });
} else {
  // The machine's server, directly or through the suite's fault proxy (context.endpoint).
  const topology = uniqueTopology("conf");
  runConformance({
    name: "nats",
    endpoint: endpointOf(url),
    createBroker: (context) =>
      createNatsBroker({ ...topology, url: context?.endpoint ? `nats://${context.endpoint.host}:${context.endpoint.port}` : url }),
  });

  // A 1 s native delay limit: core's re-delay on receipt runs on top of the adapter's own holding.
  describe("conformance: nats (1 s native delay limit)", () => {
    const shortDelays = {
      name: "nats (1 s native delay limit)",
      createBroker: () => createNatsBroker({ ...topology, url, maxDelay: "1s" }),
    };
    transportDelays(shortDelays);
    jobSemanticsScheduling(shortDelays);
  });

  // Restart cases on a private server (kill -9, then start on the same store directory).
  // Started while collecting: the suite asks a broker for its capabilities before any hook runs.
  const server: PrivateServer = await startPrivateNats();
  const privateTopology = uniqueTopology("restart");
  describe("conformance: nats (private nats-server, kill -9 and restart)", () => {
    transportRestart({
      name: "nats (private nats-server)",
      createBroker: () => createNatsBroker({ ...privateTopology, url: `nats://127.0.0.1:${server.port}` }),
      restart: () => server.restart("SIGKILL"),
    });
    // The same server, down while a new broker makes its first connection.
    const onPrivate = (): ReturnType<typeof createNatsBroker> =>
      createNatsBroker({ ...privateTopology, url: `nats://127.0.0.1:${server.port}`, connectTimeout: "2s" });
    jobSemanticsFirstConnection({
      name: "nats (private nats-server, down at first)",
      createBroker: onPrivate,
      firstConnection: { createBroker: onPrivate, stop: () => server.kill("SIGKILL"), start: () => server.start() },
    });
  });

  afterAll(async () => {
    await deleteStreams(url, [topology.stream]);
    await server.stop();
  });
}
