// The only file that differs between examples: how to reach the broker.
// Every call opens a new connection to the NATS server (JetStream enabled) at JOBS_NATS_URL.
import type { Broker } from "@jobs/core";
import { createNatsBroker } from "@jobs/nats";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect as natsConnect } from "@nats-io/transport-node";

const url = process.env.JOBS_NATS_URL ?? "nats://127.0.0.1:4222";

/**
 * This run's own work-queue stream and subjects (an application would keep the default "JOBS"):
 * the broker creates durable consumers per queue and priority level, and `cleanup()` deletes the
 * stream with all of them, so a run leaves nothing behind on a shared server.
 */
export const stream = `JOBS_EXAMPLE_${process.pid}`;
const prefix = `example${process.pid}`;

/** A new connection to the NATS server; the broker creates the stream if missing. */
export function connect(): Broker {
  return createNatsBroker({ url, stream, prefix });
}

/** Deletes this run's stream and its consumers (nothing to do if it does not exist). */
export async function cleanup(): Promise<void> {
  const u = new URL(url);
  const nc = await natsConnect({
    servers: `${u.hostname}:${u.port || 4222}`,
    ...(u.username === "" ? {} : { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) }),
  });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(stream).catch((error: unknown) => {
      if ((error as { status?: unknown } | null)?.status !== 404) throw error;
    });
  } finally {
    await nc.close();
  }
}
