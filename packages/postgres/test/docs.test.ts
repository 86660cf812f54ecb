import { readFileSync } from "node:fs";
import { capabilityTable, docsCapabilityTable } from "@jobs/conformance";
import { expect, it } from "vitest";
import { postgresCapabilities } from "../src/index.js";

it("docs/adapters/postgres.md shows the capability table generated from postgresCapabilities", () => {
  const page = readFileSync(new URL("../../../docs/adapters/postgres.md", import.meta.url), "utf8");
  // On failure, paste the expected table between the markers of the page.
  expect(docsCapabilityTable(page)).toBe(capabilityTable(postgresCapabilities));
});
