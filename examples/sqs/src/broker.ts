// The only file that differs between examples: how to reach the broker.
// SQS at JOBS_SQS_ENDPOINT (with the usual AWS credentials), or, when it is not set, the
// local-aws-sqs emulator started in this process on a free loopback port.
import type { Broker } from "@jobs/core";
import { createSqsBroker } from "@jobs/sqs";

const configured = process.env.JOBS_SQS_ENDPOINT;
const url = configured !== undefined && configured !== "" ? configured : await startEmulator();

/** A new connection (its own SQS client) to the queues. */
export function connect(): Broker {
  if (configured !== undefined && configured !== "") return createSqsBroker({ url });
  // The emulator checks no credentials, and answers a long poll only when the batch is full or
  // the wait is over: short waits keep the example quick.
  return createSqsBroker({
    url,
    clientConfig: { credentials: { accessKeyId: "local", secretAccessKey: "local" } },
    waitTimeSeconds: 1,
    countsIncludeInFlight: true,
  });
}

async function startEmulator(): Promise<string> {
  const { createSqsServer } = await import("local-aws-sqs");
  const server = await createSqsServer({ port: 0, hostname: "127.0.0.1" });
  // The example exits when its work is done, emulator or not.
  server.unref();
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the emulator has no TCP address");
  return `http://127.0.0.1:${address.port}`;
}
