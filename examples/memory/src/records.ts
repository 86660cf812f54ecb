// Job records on the in-memory broker: the records scenario of example-shared with the memory store
// (pnpm --filter example-memory records). With --smoke (run by the smoke script) it checks the outcome and exits non-zero if anything is off.
import { createMemoryStore } from "@jobs/memory";
import { runRecords } from "example-shared";
import { connect } from "./broker.js";

const smoke = process.argv.includes("--smoke");
// In process, beside the memory broker only; a networked broker takes a networked store (createRedisStore).
const store = createMemoryStore();
try {
  const result = await runRecords({ connect, store });
  console.log(`\n${result.results.length} reports built, 1 cancelled while waiting; the batch lists: ${result.listed.join(", ")}`);
  if (smoke) {
    const ok =
      result.cancelOutcome === "cancelled" &&
      result.cancelledEnded === "cancelled" &&
      !result.started.includes(result.cancelledId) &&
      result.listed.join() === "cancelled,succeeded,succeeded";
    if (!ok) {
      console.error("smoke: unexpected outcome", result);
      process.exitCode = 1;
    } else {
      console.log("smoke: ok");
    }
  }
} finally {
  await store.close();
}
