import { createMemoryStore } from "@jobs/memory";
import { runRecordsInTest } from "example-shared";
import { expect, it } from "vitest";
import { connect } from "../src/broker.js";

it("runs the records example on the memory broker and store: tags, result(), progress, cancel of a waiting job, listJobs", async () => {
  const { result, lines } = await runRecordsInTest({ connect, store: { open: () => createMemoryStore() } });
  expect(result.results).toEqual([
    { account: "acme", pages: 3, url: "https://reports.example/acme.pdf" },
    { account: "globex", pages: 2, url: "https://reports.example/globex.pdf" },
  ]);
  expect(result.cancelOutcome).toBe("cancelled");
  expect(result.cancelledEnded).toBe("cancelled");
  // The cancelled report was enqueued first and the worker runs one job at a time in order:
  // its message was acked unrun before the others started.
  expect(result.started).toHaveLength(2);
  expect(result.started).not.toContain(result.cancelledId);
  expect(result.progress).toEqual({ page: 3, of: 3 });
  expect(result.listed).toEqual(["cancelled", "succeeded", "succeeded"]);
  expect(lines.filter((l) => l.startsWith("[report.build]"))).toHaveLength(2);
  expect(lines).toContain(`cancel ${result.cancelledId.slice(0, 8)} (waiting): cancelled`);
});
