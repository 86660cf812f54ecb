import { readFileSync } from "node:fs";
import { capabilityTable, docsCapabilityTable } from "@jobs/conformance";
import { expect, it } from "vitest";
import { redisCapabilities } from "../src/index.js";

it("docs/adapters/redis.md shows the capability table generated from redisCapabilities", () => {
  const page = readFileSync(new URL("../../../docs/adapters/redis.md", import.meta.url), "utf8");
  // On failure, paste the expected table between the markers of the page.
  expect(docsCapabilityTable(page)).toBe(capabilityTable(redisCapabilities));
});
