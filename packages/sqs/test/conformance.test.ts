import {
  jobSemanticsEnqueueValidation,
  jobSemanticsFirstConnection,
  runConformance,
  transportDedupe,
  transportRoundTrip,
} from "@jobs/conformance";
import { afterAll, describe } from "vitest";
import { createSqsBroker, type SqsBrokerOptions } from "../src/index.js";
import { credentials, endpoint, endpointUrl, onEmulator, startPrivateEmulator } from "./emulator.js";

// Every instance is a new client (its own connections) to one emulator; waits of 1 s keep the
// suite fast, because local-aws-sqs answers a long poll only when the batch is full or the wait is over.
const settings = (context?: { readonly endpoint?: { readonly host: string; readonly port: number } }): SqsBrokerOptions => ({
  url: context?.endpoint === undefined ? endpointUrl : `http://${context.endpoint.host}:${context.endpoint.port}`,
  clientConfig: { credentials },
  waitTimeSeconds: 1,
  requestTimeout: "3s",
  countsIncludeInFlight: onEmulator,
});

runConformance({ name: "sqs", createBroker: (context) => createSqsBroker(settings(context)), endpoint });

// FIFO queues cannot hold a message back (no per-message delay; a deferral keeps counting
// receives), so only the groups they pass run on them: the dedupe cases the standard run skips.
const fifo = { name: "sqs (FIFO)", createBroker: () => createSqsBroker({ ...settings(), fifo: true }) };
describe("conformance: sqs (FIFO)", () => {
  transportRoundTrip(fifo);
  transportDedupe(fifo);
  jobSemanticsEnqueueValidation(fifo);
});

// A private emulator of its own (the shared one keeps serving the rest), down while a new broker
// makes its first request. It keeps nothing across a restart; the case creates its queue after.
const down = await startPrivateEmulator();
afterAll(() => down.stop());
const onPrivate = (): ReturnType<typeof createSqsBroker> =>
  createSqsBroker({ ...settings({ endpoint: { host: "127.0.0.1", port: down.port } }), connectTimeout: "2s" });
describe("conformance: sqs (private emulator, down at first)", () => {
  jobSemanticsFirstConnection({
    name: "sqs (private emulator, down at first)",
    createBroker: onPrivate,
    firstConnection: { createBroker: onPrivate, stop: () => down.kill("SIGKILL"), start: () => down.start() },
  });
});
