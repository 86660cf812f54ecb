// The insecure-connection warning reaches the logger with its code, and the URL's password
// appears in no entry (the host is TEST-NET-1: never reached, the warning is about configuration).
import type { LogFields, Logger } from "@jobs/core";
import { captureConsole, waitFor } from "@jobs/core/testing";
import { afterEach, beforeEach, expect, it } from "vitest";
import { createRabbitmqBroker } from "../src/index.js";
import { closeAll } from "./support.js";

const SECRET = "amqp-Pa55word-never-logged";
let warned: string[];

let restore: () => void;
beforeEach(() => {
  ({ warned, restore } = captureConsole());
});
afterEach(() => restore());

it("gives JOBS_INSECURE_CONNECTION to the logger, and prints it once without one; never the password", async () => {
  const entries: { fields: LogFields; message: string }[] = [];
  const logger: Logger = {
    warn: (fields, message) => entries.push({ fields, message }),
    error: (fields, message) => entries.push({ fields, message }),
  };
  const logged = createRabbitmqBroker({ url: `amqp://app:${SECRET}@192.0.2.1:5672`, requestTimeout: "1s", logger });
  const loud = createRabbitmqBroker({ url: `amqp://app:${SECRET}@192.0.2.1:5672`, requestTimeout: "1s" });
  try {
    await waitFor(() => entries.some((e) => e.fields.code === "JOBS_INSECURE_CONNECTION") && warned.length > 0, { timeout: 2_000 });
    const insecure = entries.filter((e) => e.fields.code === "JOBS_INSECURE_CONNECTION");
    expect(insecure).toHaveLength(1);
    expect(insecure[0]?.fields.source).toBe("rabbitmq");
    expect(insecure[0]?.message).toMatch(/^\[jobs\] \[rabbitmq\] .*TLS/);
    expect(warned.filter((w) => w.includes("[JOBS_INSECURE_CONNECTION]"))).toHaveLength(1);
  } finally {
    await closeAll([logged, loud]);
  }
  expect(JSON.stringify(entries)).not.toContain(SECRET);
  expect(warned.join("\n")).not.toContain(SECRET);
});
