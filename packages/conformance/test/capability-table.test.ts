import { describe, expect, it } from "vitest";
import { capabilityTable, docsCapabilityTable } from "../src/index.js";

describe("capabilityTable", () => {
  it("says what core emulates for a broker without native priority, long delays or dedupe", () => {
    const table = capabilityTable({
      priority: "none",
      maxDelayMs: 900_000,
      maxPayloadBytes: 262_144,
      dedupeWindowMs: 0,
      leaseExtension: false,
      durable: true,
      redeliverOnClose: false,
      timerResolutionMs: 1_000,
    });
    expect(table.split("\n")).toEqual([
      "| feature | support |",
      "| --- | --- |",
      "| Priority (5 levels) | emulated by core: one physical queue per level, highest first |",
      "| Delays and retry backoff | native up to 15 min; longer delays emulated by core (re-delayed on receipt, never counted as attempts) |",
      "| Largest message | 262,144 bytes (checked by core before sending) |",
      "| Dedupe by job id | not available (caller-chosen ids are rejected) |",
      "| Lease extension (heartbeats) | not available (keep jobs shorter than the lease) |",
      "| Redelivery when a consumer dies | when its lease expires |",
      "| Durable (survives a broker restart) | yes |",
      "| Timer resolution | 1 s |",
    ]);
  });

  it("finds the table between the docs markers, and nothing without them", () => {
    expect(docsCapabilityTable("intro\n<!-- capabilities:start -->\n| a |\n<!-- capabilities:end -->\nrest")).toBe("| a |");
    expect(docsCapabilityTable("no markers here")).toBeUndefined();
  });
});
