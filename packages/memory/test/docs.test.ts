import { readFileSync } from "node:fs";
import { capabilityTable, docsCapabilityTable } from "@jobs/conformance";
import { expect, it } from "vitest";
import { memoryCapabilities } from "../src/index.js";

it("docs/adapters/memory.md shows the capability table generated from memoryCapabilities", () => {
  const page = readFileSync(new URL("../../../docs/adapters/memory.md", import.meta.url), "utf8");
  // On failure, paste the expected table between the markers of the page.
  expect(docsCapabilityTable(page)).toBe(capabilityTable(memoryCapabilities));
});
