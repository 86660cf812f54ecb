import { readFileSync } from "node:fs";
import { capabilityTable, docsCapabilityTable } from "@jobs/conformance";
import { expect, it } from "vitest";
import { natsCapabilities } from "../src/index.js";

it("docs/adapters/nats.md shows the capability table generated from natsCapabilities", () => {
  const page = readFileSync(new URL("../../../docs/adapters/nats.md", import.meta.url), "utf8");
  // On failure, paste the expected table between the markers of the page.
  expect(docsCapabilityTable(page)).toBe(capabilityTable(natsCapabilities));
});
