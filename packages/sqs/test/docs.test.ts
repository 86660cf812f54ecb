import { readFileSync } from "node:fs";
import { capabilityTable, docsCapabilityTable } from "@jobs/conformance";
import { expect, it } from "vitest";
import { sqsCapabilities } from "../src/index.js";

it("docs/adapters/sqs.md shows the capability table generated from sqsCapabilities", () => {
  const page = readFileSync(new URL("../../../docs/adapters/sqs.md", import.meta.url), "utf8");
  // On failure, paste the expected table between the markers of the page.
  expect(docsCapabilityTable(page)).toBe(capabilityTable(sqsCapabilities));
});
