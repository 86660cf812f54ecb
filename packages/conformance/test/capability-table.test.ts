import { describe, expect, it } from "vitest";
import { capabilityTable, docsCapabilityTable, storeCapabilityTable } from "../src/index.js";

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

  it("finds each named table by its own markers", () => {
    const page = [
      "<!-- capabilities:start -->",
      "| broker |",
      "<!-- capabilities:end -->",
      "<!-- store-capabilities:start -->",
      "| store |",
      "<!-- store-capabilities:end -->",
    ].join("\n");
    expect(docsCapabilityTable(page)).toBe("| broker |");
    expect(docsCapabilityTable(page, "store-capabilities")).toBe("| store |");
    expect(docsCapabilityTable("<!-- store-capabilities:start -->\n| open |", "store-capabilities")).toBeUndefined();
  });
});

describe("storeCapabilityTable", () => {
  it("says how results are awaited, what the store pairs with and whether it is durable", () => {
    expect(storeCapabilityTable({ notify: false, inProcess: false, durable: true }).split("\n")).toEqual([
      "| feature | support |",
      "| --- | --- |",
      "| Waiting for a result (`result()`) | polled by core (from 20 ms, doubling up to 1 s) |",
      "| Pairs with | any broker (records live on the store's server, shared by every process) |",
      "| Durable (survives a store restart) | yes (within the window its page states) |",
    ]);
    expect(storeCapabilityTable({ notify: true, inProcess: true, durable: false }).split("\n").slice(2)).toEqual([
      "| Waiting for a result (`result()`) | notified by the store when the job finishes |",
      "| Pairs with | the memory broker only (records live in this process; core refuses another broker) |",
      "| Durable (survives a store restart) | no |",
    ]);
  });
});
