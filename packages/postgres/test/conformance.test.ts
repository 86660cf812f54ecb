import {
  brokerUrlFromEnv,
  jobSemanticsFirstConnection,
  type PrivatePostgres,
  runConformance,
  startPrivatePostgres,
  transportRestart,
} from "@jobs/conformance";
import { afterAll, describe, it } from "vitest";
import { createPostgresBroker } from "../src/index.js";
import { dropSchemas, uniqueSchema } from "./support.js";

const url = brokerUrlFromEnv("JOBS_POSTGRES_URL");

if (url === undefined) {
  describe.skip("postgres [needs JOBS_POSTGRES_URL]", () => {
    it("conformance", () => {});
  });
} else {
  // The machine's server, directly or through the suite's fault proxy (context.endpoint).
  const schema = uniqueSchema("conf");
  const machine = new URL(url);
  runConformance({
    name: "postgres",
    endpoint: { host: machine.hostname, port: Number(machine.port || 5432) },
    createBroker: (context) => {
      if (context?.endpoint === undefined) return createPostgresBroker({ url, schema });
      const proxied = new URL(url);
      proxied.hostname = context.endpoint.host;
      proxied.port = String(context.endpoint.port);
      return createPostgresBroker({ url: proxied.toString(), schema });
    },
  });

  // Restart cases on a private server (kill -9, then start on the same data directory).
  // Started while collecting: the suite asks a broker for its capabilities before any hook runs.
  const server: PrivatePostgres = await startPrivatePostgres();
  describe("conformance: postgres (private server, kill -9 and restart)", () => {
    transportRestart({
      name: "postgres (private server)",
      createBroker: () => createPostgresBroker({ url: server.url, schema: "jobs_restart" }),
      restart: () => server.restart("SIGKILL"),
    });
  });

  // The same private server, down while a new broker makes its first connection.
  const onPrivate = (): ReturnType<typeof createPostgresBroker> =>
    createPostgresBroker({ url: server.url, schema: "jobs_first", connectTimeout: "2s" });
  jobSemanticsFirstConnection({
    name: "postgres (private server, down at first)",
    createBroker: onPrivate,
    firstConnection: { createBroker: onPrivate, stop: () => server.kill("SIGKILL"), start: () => server.start() },
  });

  afterAll(async () => {
    await dropSchemas(url, [schema]);
    await server.stop();
  });
}
