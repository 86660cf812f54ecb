import { jetstreamManager } from "@nats-io/jetstream";
import { connect as natsConnect } from "@nats-io/transport-node";
import { runScenario } from "example-shared";
import { expect, it } from "vitest";
import { cleanup, connect, stream } from "../src/broker.js";

const url = process.env.JOBS_NATS_URL;

it.skipIf(url === undefined)(
  "runs the example scenario on NATS and leaves neither its stream nor its consumers behind",
  async () => {
    const lines: string[] = [];
    try {
      const result = await runScenario({ connect, log: (line) => lines.push(line) });
      expect(result).toEqual({ succeeded: 8, deadLettered: 1, retried: 2, firstImage: "critical" });
    } finally {
      await cleanup();
    }
    const u = new URL(url as string);
    const nc = await natsConnect({ servers: `${u.hostname}:${u.port || 4222}` });
    try {
      const jsm = await jetstreamManager(nc);
      const names: string[] = [];
      for await (const name of jsm.streams.names()) names.push(name);
      expect(names).not.toContain(stream);
    } finally {
      await nc.close();
    }
  },
  60_000,
);
