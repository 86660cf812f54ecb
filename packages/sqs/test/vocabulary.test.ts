// The shared vocabulary on SQS: `url` (the old `endpoint` still works, with one deprecation
// warning), `client` checked by its shape rather than the SDK's class, and a request handler of
// the caller's kept (and left undestroyed) rather than replaced.
import { randomUUID } from "node:crypto";
import { Agent } from "node:http";
import { SQSClient } from "@aws-sdk/client-sqs";
import type { Broker } from "@jobs/core";
import type { Delivery, OutgoingMessage } from "@jobs/core/adapter";
import { jobsWarningsOf, waitFor } from "@jobs/core/testing";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { afterEach, describe, expect, it } from "vitest";
import { createSqsBroker, type SqsBrokerOptions } from "../src/index.js";
import { credentials, endpointUrl, onEmulator } from "./emulator.js";

const opened: Broker[] = [];
afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((b) => b.close()));
});

const test: SqsBrokerOptions = { waitTimeSeconds: 1, requestTimeout: "3s", countsIncludeInFlight: onEmulator };

function open(options: SqsBrokerOptions): Broker {
  const broker = createSqsBroker({ ...test, prefix: `vocab-${randomUUID().slice(0, 8)}-`, ...options });
  opened.push(broker);
  return broker;
}

const msg = (body: string): OutgoingMessage => ({ id: randomUUID(), body, priority: 2, delayMs: 0, dedupe: true });

/** Publishes one message, takes it, acks it: the broker really works. */
async function roundTrip(broker: Broker): Promise<void> {
  expect(await broker.publish("q", [msg("round trip")])).toEqual([{ ok: true, duplicate: false }]);
  const seen: Delivery[] = [];
  const sub = await broker.consume("q", { prefetch: 1, leaseMs: 30_000 }, (d) => seen.push(d));
  const delivery = await waitFor(() => seen[0], { timeout: 10_000, message: "no delivery" });
  expect(delivery.body).toBe("round trip");
  await delivery.ack();
  await sub.stop();
}

describe("names", () => {
  it("endpoint still works as the deprecated name of url, with one warning; both together are refused", async () => {
    let old: Broker | undefined;
    const warnings = await jobsWarningsOf(() => {
      old = open({ endpoint: endpointUrl, clientConfig: { credentials } });
      open({ endpoint: endpointUrl, clientConfig: { credentials } });
    });
    expect(warnings.map((w) => [w.name, w.code])).toEqual([["DeprecationWarning", "JOBS_DEP_SQS_ENDPOINT"]]);
    expect(warnings[0]?.message).toContain('use "url"');
    await roundTrip(old as Broker);
    expect(() => createSqsBroker({ url: endpointUrl, endpoint: endpointUrl })).toThrow('invalid option "endpoint"');
  });
});

describe("client by shape", () => {
  it("works with a client of another class that has the SDK client's shape, and never destroys it", async () => {
    const real = new SQSClient({ endpoint: endpointUrl, region: "us-east-1", credentials });
    let destroyed = 0;
    /** Not the SDK's class (as from a second installed copy): forwards what the broker calls. */
    class SecondCopy {
      send = real.send.bind(real);
      destroy = (): void => {
        destroyed++;
        real.destroy();
      };
    }
    const client = new SecondCopy();
    expect(client instanceof SQSClient).toBe(false);
    const broker = open({ client: client as unknown as SQSClient });
    await roundTrip(broker);
    await broker.close();
    expect(destroyed).toBe(0);
    real.destroy();
  });

  it("refuses a client without send()", () => {
    expect(() => createSqsBroker({ client: { destroy() {} } as unknown as SQSClient })).toThrow(/invalid option "client".*no send\(\)/);
  });
});

describe("clientConfig.requestHandler", () => {
  it("keeps a handler of the caller's: it sees every request, and close() leaves it alive", async () => {
    const inner = new NodeHttpHandler();
    let requests = 0;
    let destroyed = 0;
    /** A caller's handler that counts what passes through it. */
    class CountingHandler {
      readonly metadata = inner.metadata;
      handle(...args: Parameters<NodeHttpHandler["handle"]>): ReturnType<NodeHttpHandler["handle"]> {
        requests++;
        return inner.handle(...args);
      }
      updateHttpClientConfig(...args: Parameters<NodeHttpHandler["updateHttpClientConfig"]>): void {
        inner.updateHttpClientConfig(...args);
      }
      httpHandlerConfigs(): ReturnType<NodeHttpHandler["httpHandlerConfigs"]> {
        return inner.httpHandlerConfigs();
      }
      destroy(): void {
        destroyed++;
      }
    }
    const broker = open({ url: endpointUrl, clientConfig: { credentials, requestHandler: new CountingHandler() } });
    await roundTrip(broker);
    // At least: look up (or create) the queue, send, receive, delete.
    expect(requests).toBeGreaterThanOrEqual(4);
    const before = requests;
    await broker.counts("q");
    expect(requests).toBeGreaterThan(before);
    await broker.close();
    expect(destroyed).toBe(0);
    inner.destroy();
  });

  it("lays handler options over the broker's own handler: the caller's agent carries the requests", async () => {
    let sockets = 0;
    /** The caller's agent, counting the connections it opens. */
    class CountingAgent extends Agent {
      override createConnection(...args: Parameters<Agent["createConnection"]>): ReturnType<Agent["createConnection"]> {
        sockets++;
        return super.createConnection(...args);
      }
    }
    const httpAgent = new CountingAgent({ keepAlive: true });
    const broker = open({ url: endpointUrl, clientConfig: { credentials, requestHandler: { httpAgent, requestTimeout: 5_000 } } });
    await roundTrip(broker);
    expect(sockets).toBeGreaterThan(0);
    await broker.close();
    httpAgent.destroy();
  });
});
