import type { BrokerCapabilities, StoreCapabilities } from "@jobs/core/adapter";

/**
 * Renders an adapter's capabilities as the native/emulated Markdown table its docs page shows.
 * Adapter docs keep it between `<!-- capabilities:start -->` and `<!-- capabilities:end -->`, and a
 * test compares it with `capabilityTable(caps)` (see `docsCapabilityTable`), so docs never drift.
 */
export function capabilityTable(caps: BrokerCapabilities): string {
  const delay =
    caps.maxDelayMs === Number.POSITIVE_INFINITY
      ? "native, any length"
      : `native up to ${duration(caps.maxDelayMs)}; longer delays emulated by core (re-delayed on receipt, never counted as attempts)`;
  const rows: [string, string][] = [
    ["Priority (5 levels)", caps.priority === "native" ? "native" : "emulated by core: one physical queue per level, highest first"],
    ["Delays and retry backoff", delay],
    ["Largest message", `${caps.maxPayloadBytes.toLocaleString("en-US")} bytes (checked by core before sending)`],
    [
      "Dedupe by job id",
      caps.dedupeWindowMs > 0 ? `native, ${duration(caps.dedupeWindowMs)} window` : "not available (caller-chosen ids are rejected)",
    ],
    ["Lease extension (heartbeats)", caps.leaseExtension ? "native" : "not available (keep jobs shorter than the lease)"],
    ["Redelivery when a consumer dies", caps.redeliverOnClose ? "at once when its connection closes" : "when its lease expires"],
    ["Durable (survives a broker restart)", caps.durable ? "yes" : "no"],
    ["Timer resolution", `${duration(caps.timerResolutionMs)}`],
  ];
  if (caps.exactActiveCount === false) {
    rows.push(["Active (in-flight) count", "this instance's own deliveries only (the broker reports ready messages alone)"]);
  }
  if (caps.exactPurge === false) {
    rows.push(["Purge", "waiting and dead messages at once; delayed ones (and deliveries in flight) within the broker's purge delay"]);
  }
  return ["| feature | support |", "| --- | --- |", ...rows.map(([a, b]) => `| ${a} | ${b} |`)].join("\n");
}

/**
 * Renders a job store's capabilities as the Markdown table its docs page shows, beside the broker's:
 * the page keeps it between `<!-- store-capabilities:start -->` and `<!-- store-capabilities:end -->`,
 * and a test compares it with `storeCapabilityTable(caps)` (`docsCapabilityTable(page, "store-capabilities")`).
 */
export function storeCapabilityTable(caps: StoreCapabilities): string {
  const rows: [string, string][] = [
    [
      "Waiting for a result (`result()`)",
      caps.notify ? "notified by the store when the job finishes" : "polled by core (from 20 ms, doubling up to 1 s)",
    ],
    [
      "Pairs with",
      caps.inProcess
        ? "the memory broker only (records live in this process; core refuses another broker)"
        : "any broker (records live on the store's server, shared by every process)",
    ],
    ["Durable (survives a store restart)", caps.durable ? "yes (within the window its page states)" : "no"],
  ];
  return ["| feature | support |", "| --- | --- |", ...rows.map(([a, b]) => `| ${a} | ${b} |`)].join("\n");
}

/**
 * The table between the markers `<!-- <name>:start -->` and `<!-- <name>:end -->` of a docs page
 * (`capabilities` for the broker's table, `store-capabilities` for the store's), or undefined when
 * the markers are missing.
 */
export function docsCapabilityTable(markdown: string, name = "capabilities"): string | undefined {
  const start = markdown.indexOf(`<!-- ${name}:start -->\n`);
  if (start < 0) return undefined;
  const from = start + `<!-- ${name}:start -->\n`.length;
  const end = markdown.indexOf(`\n<!-- ${name}:end -->`, from);
  return end < 0 ? undefined : markdown.slice(from, end);
}

function duration(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, "d"],
    [3_600_000, "h"],
    [60_000, "min"],
    [1_000, "s"],
  ];
  for (const [size, unit] of units) if (ms >= size && ms % size === 0) return `${ms / size} ${unit}`;
  return `${ms} ms`;
}
