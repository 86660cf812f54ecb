/**
 * T7 — `insecure-connection` (RELIABILITY.md S8/T7): a broker reached on a non-loopback address of
 * this machine without TLS or credentials emits exactly one `insecure-connection`; on loopback it
 * emits none. The non-loopback address is this machine's own (first non-loopback IPv4 interface),
 * forwarded by a TCP proxy to the private broker on 127.0.0.1: nothing leaves the machine.
 */
import { networkInterfaces } from "node:os";
import { createFaultProxy, type FaultProxy } from "@jobs/conformance";
import { createClient, defineJob } from "@jobs/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AdapterName, type BrokerSpec, selectedAdapters, startTarget, type Target } from "../src/adapters.js";
import { BrokerSet, queueName, Recorder, skipCase } from "../src/in-process.js";
import { bar, writeReport } from "../src/report.js";

/** This machine's first non-loopback IPv4 address, if it has one. */
function machineAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  return undefined;
}

const address = machineAddress();

/** Opens a broker on `spec`, enqueues one job through it, and returns the insecure-connection events it emitted meanwhile. */
async function observe(spec: BrokerSpec): Promise<{ events: string[]; enqueued: boolean; error?: string }> {
  const set = new BrokerSet(spec);
  const rec = new Recorder();
  try {
    const broker = set.open();
    rec.watchBroker(broker, "b");
    const job = defineJob<{ n: number }>({ name: "t7.probe", queue: queueName("t7") });
    let enqueued = false;
    let error: string | undefined;
    try {
      await createClient({ broker }).enqueue(job, { n: 1 });
      enqueued = true;
    } catch (e) {
      error = String((e as Error).message);
    }
    const events = rec.of("broker:insecure-connection").map((e) => (e.data as { message: string }).message);
    return error === undefined ? { events, enqueued } : { events, enqueued, error };
  } finally {
    await set.close();
  }
}

describe.each(selectedAdapters())("T7 insecure-connection on %s", (adapter: AdapterName) => {
  if (adapter === "memory") {
    skipCase("T7", adapter, "the memory broker has no connection");
    return;
  }
  if (address === undefined) {
    skipCase("T7", adapter, "this machine has no non-loopback IPv4 interface");
    return;
  }
  let target: Target;
  let proxy: FaultProxy;
  beforeAll(async () => {
    target = await startTarget(adapter, "t7");
    const port = Number(new URL(target.spec.url).port);
    proxy = await createFaultProxy({ target: { host: "127.0.0.1", port }, host: address });
  });
  afterAll(async () => {
    await proxy?.close();
    await target?.stop();
  });

  it("T7 one insecure-connection for a non-loopback address without TLS or credentials, none on loopback", async () => {
    const remote = new URL(target.spec.url);
    remote.hostname = address;
    remote.port = String(proxy.address.port);
    // RabbitMQ always sends credentials (guest); its adapter warns for any non-TLS remote host.
    const outside = await observe({ ...target.spec, url: remote.toString() });
    const loopback = await observe(target.spec);
    const report = writeReport({
      test: "T7",
      adapter,
      seed: 0,
      config: { address },
      figures: { outside, loopback },
      bars: [
        bar(`insecure-connection via ${address}`, outside.events.length, "= 1", outside.events.length === 1),
        bar("the broker worked through that address", outside.enqueued, "true", outside.enqueued),
        bar("insecure-connection on loopback", loopback.events.length, "= 0", loopback.events.length === 0),
        bar("the broker worked on loopback", loopback.enqueued, "true", loopback.enqueued),
      ],
    });
    expect(report.verdict).toBe("pass");
  });
});
