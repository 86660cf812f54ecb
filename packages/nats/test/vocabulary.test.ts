// The shared vocabulary on NATS: `prefix`, `client` and `heartbeat` (the old `subjectPrefix` and
// `connection` still work, with one deprecation warning each), and `client` checked by its shape.
import { randomUUID } from "node:crypto";
import { brokerUrlFromEnv } from "@jobs/conformance";
import type { Broker } from "@jobs/core";
import type { OutgoingMessage } from "@jobs/core/adapter";
import { jobsWarningsOf } from "@jobs/core/testing";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, describe, expect, it } from "vitest";
import { createNatsBroker } from "../src/index.js";
import { resolveNatsOptions } from "../src/options.js";
import { deleteStreams, endpointOf, uniqueTopology } from "./support.js";

const url = brokerUrlFromEnv("JOBS_NATS_URL");

const msg = (body: string): OutgoingMessage => ({ id: randomUUID(), body, priority: 2, delayMs: 0, dedupe: true });

describe("option checks", () => {
  it("reads prefix and heartbeat; refuses a bad heartbeat, a shapeless client, and an old name beside its new one", () => {
    const settings = resolveNatsOptions({ prefix: "mine", heartbeat: "750ms" });
    expect([settings.prefix, settings.heartbeatMs]).toEqual(["mine", 750]);
    expect(resolveNatsOptions({}).heartbeatMs).toBe(2_000);
    expect(() => createNatsBroker({ heartbeat: "10ms" })).toThrow('invalid option "heartbeat"');
    expect(() => createNatsBroker({ prefix: "a.b" })).toThrow('invalid option "prefix"');
    expect(() => createNatsBroker({ client: {} as NatsConnection })).toThrow(/invalid option "client".*no publish\(\)/);
    expect(() => createNatsBroker({ prefix: "a", subjectPrefix: "b" })).toThrow('invalid option "subjectPrefix"');
  });
});

describe.skipIf(url === undefined)("old names [needs JOBS_NATS_URL]", () => {
  const topology = uniqueTopology("vocab");
  const brokers: Broker[] = [];
  let nc: NatsConnection | undefined;
  afterAll(async () => {
    await Promise.allSettled(brokers.map((b) => b.close()));
    await nc?.close();
    await deleteStreams(url as string, [topology.stream]);
  });

  it("subjectPrefix and connection still work, with one deprecation warning each", async () => {
    const { host, port } = endpointOf(url as string);
    nc = await connect({ servers: `${host}:${port}` });
    const shared = nc;
    const warnings = await jobsWarningsOf(() => {
      for (let i = 0; i < 2; i++) {
        brokers.push(createNatsBroker({ connection: shared, stream: topology.stream, subjectPrefix: topology.prefix }));
      }
    });
    expect(warnings.map((w) => [w.name, w.code])).toEqual([
      ["DeprecationWarning", "JOBS_DEP_NATS_SUBJECTPREFIX"],
      ["DeprecationWarning", "JOBS_DEP_NATS_CONNECTION"],
    ]);
    expect(warnings[0]?.message).toContain('use "prefix"');
    const broker = brokers[0] as Broker;
    expect(await broker.publish("old", [msg("under the old names")])).toEqual([{ ok: true, duplicate: false }]);
    // The subject carries the prefix given under its old name.
    const jsm = await jetstreamManager(shared);
    const info = await jsm.streams.info(topology.stream, { subjects_filter: `${topology.prefix}.old.ready` });
    expect(info.state.subjects?.[`${topology.prefix}.old.ready`]).toBe(1);
    await broker.close();
    // The connection was the caller's: still open.
    expect(shared.isClosed()).toBe(false);
  });
});
