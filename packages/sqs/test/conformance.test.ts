import { runConformance } from "@jobs/conformance";
import { createSqsBroker } from "../src/index.js";
import { credentials, endpoint, endpointUrl, onEmulator } from "./emulator.js";

// Every instance is a new client (its own connections) to one emulator; waits of 1 s keep the
// suite fast, because local-aws-sqs answers a long poll only when the batch is full or the wait is over.
runConformance({
  name: "sqs",
  createBroker: (context) =>
    createSqsBroker({
      endpoint: context?.endpoint === undefined ? endpointUrl : `http://${context.endpoint.host}:${context.endpoint.port}`,
      clientConfig: { credentials },
      waitTimeSeconds: 1,
      requestTimeout: "3s",
      countsIncludeInFlight: onEmulator,
    }),
  endpoint,
});
