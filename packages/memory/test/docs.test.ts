import { readFileSync } from "node:fs";
import { capabilityTable, docsCapabilityTable, storeCapabilityTable } from "@jobs/conformance";
import { expect, it } from "vitest";
import { memoryCapabilities, memoryStoreCapabilities } from "../src/index.js";

const page = readFileSync(new URL("../../../docs/adapters/memory.md", import.meta.url), "utf8");

// On failure, paste the expected table between the markers of the page.
it("docs/adapters/memory.md shows the capability table generated from memoryCapabilities", () => {
  expect(docsCapabilityTable(page)).toBe(capabilityTable(memoryCapabilities));
});

it("docs/adapters/memory.md shows the store capability table generated from memoryStoreCapabilities", () => {
  expect(docsCapabilityTable(page, "store-capabilities")).toBe(storeCapabilityTable(memoryStoreCapabilities));
});
