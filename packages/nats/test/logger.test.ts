// The adapter's own warning (nats-server before 2.10 fsyncs lazily) reaches the console once when
// nobody listens, and the logger when one is given.

import { brokerUrlFromEnv } from "@jobs/conformance";
import type { LogFields, Logger } from "@jobs/core";
import { captureConsole } from "@jobs/core/testing";
import { connect } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { createNatsBroker } from "../src/index.js";
import { deleteStreams, uniqueTopology } from "./support.js";

const url = brokerUrlFromEnv("JOBS_NATS_URL");

describe.skipIf(url === undefined)("nats: logging [needs JOBS_NATS_URL]", () => {
  const topology = uniqueTopology("logger");
  let warned: string[];
  let restore: () => void;
  beforeEach(() => {
    ({ warned, restore } = captureConsole());
  });
  afterEach(() => restore());
  afterAll(async () => {
    await deleteStreams(url as string, [topology.stream]);
  });

  it("reports JOBS_NATS_LAZY_FSYNC on a server before 2.10: console once without a logger, the logger with one", async () => {
    const entries: { fields: LogFields; message: string }[] = [];
    const logger: Logger = {
      warn: (fields, message) => entries.push({ fields, message }),
      error: (fields, message) => entries.push({ fields, message }),
    };
    const quiet = createNatsBroker({ url: url as string, ...topology, logger });
    const loud = createNatsBroker({ url: url as string, ...topology });
    try {
      await quiet.counts("q");
      await loud.counts("q");
      await loud.counts("q");
      // The server's version decides whether there is anything to say (the machine's is 2.9).
      const nc = await connect({ servers: url as string });
      const [major, minor] = (nc.info?.version ?? "0.0").split(".").map(Number) as [number, number];
      await nc.close();
      const expected = major < 2 || (major === 2 && minor < 10) ? 1 : 0;
      const lazy = entries.filter((e) => e.fields.code === "JOBS_NATS_LAZY_FSYNC");
      expect(lazy.map((e) => e.fields.source)).toEqual(expected === 1 ? ["nats"] : []);
      for (const e of lazy) expect(e.message).toMatch(/^\[jobs\] \[nats\] nats-server 2\.\d+/);
      expect(warned.filter((w) => w.includes("[JOBS_NATS_LAZY_FSYNC]"))).toHaveLength(expected);
    } finally {
      await Promise.all([quiet.close(), loud.close()]);
    }
  });
});
