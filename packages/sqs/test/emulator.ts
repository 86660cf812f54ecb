// Where the tests find SQS: JOBS_SQS_ENDPOINT if set, otherwise a private local-aws-sqs started
// here on a free loopback port, as a child process (it keeps everything in memory).
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { SQSClient } from "@aws-sdk/client-sqs";
import { type ConformanceEndpoint, type PrivateServer, startPrivateServer } from "@jobs/conformance";
import { afterAll } from "vitest";

const external = process.env.JOBS_SQS_ENDPOINT;

/** Fake credentials: the emulator checks none, and tests look for them in errors. */
export const credentials = { accessKeyId: "AKIAJOBSTESTKEY00001", secretAccessKey: "jobs-test-secret-Zq7pW2vR9xT4" };

/** A private local-aws-sqs on a free loopback port, as a child process (a test may kill and start it again). */
export function startPrivateEmulator(): Promise<PrivateServer> {
  const entry = pathToFileURL(createRequire(import.meta.url).resolve("local-aws-sqs")).href;
  return startPrivateServer({
    command: process.execPath,
    args: ({ port }) => ["-e", `import(${JSON.stringify(entry)}).then((m) => m.createSqsServer({ port: ${port}, hostname: "127.0.0.1" }))`],
  });
}

async function start(): Promise<{ url: string; stop: () => Promise<void> }> {
  if (external !== undefined && external !== "") return { url: external, stop: async () => {} };
  const server = await startPrivateEmulator();
  return { url: `http://127.0.0.1:${server.port}`, stop: () => server.stop() };
}

const emulator = await start();
afterAll(() => emulator.stop());

/** Endpoint URL of the SQS under test. */
export const endpointUrl: string = emulator.url;

/** Its host and port, for the fault proxy. */
export const endpoint: ConformanceEndpoint = (() => {
  const u = new URL(emulator.url);
  return { host: u.hostname, port: Number(u.port || (u.protocol === "https:" ? 443 : 80)) };
})();

/** True when the tests run against the emulator this file started (its quirks apply). */
export const onEmulator: boolean = external === undefined || external === "";

/** A client that counts its requests by operation (an SDK middleware, nothing mocked). */
export function countingClient(url: string = endpointUrl): { client: SQSClient; requests: Map<string, number>; total(): number } {
  const client = new SQSClient({ endpoint: url, region: "us-east-1", credentials });
  const requests = new Map<string, number>();
  client.middlewareStack.add(
    (next, context) => (args) => {
      const op = String(context.commandName ?? "unknown").replace(/Command$/, "");
      requests.set(op, (requests.get(op) ?? 0) + 1);
      return next(args);
    },
    { step: "finalizeRequest", name: "jobsRequestCounter" },
  );
  return { client, requests, total: () => [...requests.values()].reduce((a, b) => a + b, 0) };
}
