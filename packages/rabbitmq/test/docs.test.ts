import { readFileSync } from "node:fs";
import { capabilityTable, docsCapabilityTable } from "@jobs/conformance";
import { expect, it } from "vitest";
import { rabbitmqCapabilities } from "../src/index.js";

it("docs/adapters/rabbitmq.md shows the capability table generated from rabbitmqCapabilities", () => {
  const page = readFileSync(new URL("../../../docs/adapters/rabbitmq.md", import.meta.url), "utf8");
  // On failure, paste the expected table between the markers of the page.
  expect(docsCapabilityTable(page)).toBe(capabilityTable(rabbitmqCapabilities));
});
