// The insecure-connection warning of a plain-http endpoint off this machine: to the logger with its
// code, or printed once without one (no request is made: the warning is about configuration).
import type { LogFields, Logger } from "@jobs/core";
import { captureConsole, waitFor } from "@jobs/core/testing";
import { afterEach, beforeEach, expect, it } from "vitest";
import { createSqsBroker } from "../src/index.js";

const credentials = { accessKeyId: "AKIAJOBSTESTKEY00001", secretAccessKey: "jobs-test-secret-logger" };

let warned: string[];

let restore: () => void;
beforeEach(() => {
  ({ warned, restore } = captureConsole());
});
afterEach(() => restore());

it("gives JOBS_INSECURE_CONNECTION to the logger, and prints it once without one", async () => {
  const entries: { fields: LogFields; message: string }[] = [];
  const logger: Logger = {
    warn: (fields, message) => entries.push({ fields, message }),
    error: (fields, message) => entries.push({ fields, message }),
  };
  const logged = createSqsBroker({ url: "http://10.0.0.7:9324", clientConfig: { credentials }, logger });
  const loud = createSqsBroker({ url: "http://10.0.0.7:9324", clientConfig: { credentials } });
  const silent = createSqsBroker({ url: "http://10.0.0.8:9324", clientConfig: { credentials }, logger: false });
  try {
    await waitFor(() => entries.length > 0 && warned.length > 0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(entries.map((e) => `${e.fields.source} ${e.fields.code}`)).toEqual(["sqs JOBS_INSECURE_CONNECTION"]);
    expect(entries[0]?.message).toContain("10.0.0.7:9324");
    expect(warned).toEqual([expect.stringMatching(/^\[jobs\] \[sqs\] endpoint 10\.0\.0\.7:9324 .*\[JOBS_INSECURE_CONNECTION\]/)]);
  } finally {
    await Promise.all([logged.close(), loud.close(), silent.close()]);
  }
});
