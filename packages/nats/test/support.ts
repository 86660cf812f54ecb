// Helpers of the NATS tests: unique topology names per run, stream clean-up, private servers.
import { randomBytes } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";

/** A stream name and subject prefix no other run uses (the machine's server keeps what runs leave). */
export function uniqueTopology(tag: string): { readonly stream: string; readonly prefix: string } {
  const id = `${tag}${process.pid}${randomBytes(3).toString("hex")}`;
  return { stream: `JOBS_TEST_${id}`, prefix: `jobstest${id}` };
}

/** Host and port of a nats:// URL. */
export function endpointOf(url: string): { readonly host: string; readonly port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 4222) };
}

/** Deletes the streams (ignoring ones already gone). */
export async function deleteStreams(url: string, streams: readonly string[]): Promise<void> {
  const nc = await connect({ servers: `${endpointOf(url).host}:${endpointOf(url).port}`, ...credentials(url) });
  try {
    const jsm = await jetstreamManager(nc);
    for (const stream of streams) await jsm.streams.delete(stream).catch(() => false);
  } finally {
    await nc.close();
  }
}

function credentials(url: string): { user?: string; pass?: string } {
  const u = new URL(url);
  return u.username === "" ? {} : { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) };
}

export { startPrivateNats } from "@jobs/conformance";
