// Runs the example scenario on the broker that src/broker.ts connects to, and prints what each job did.
// With --smoke it also checks the outcome and exits non-zero if anything is off (CI runs it).
import { runScenario } from "example-shared";
import { cleanup, connect } from "./broker.js";

const smoke = process.argv.includes("--smoke");
let result: Awaited<ReturnType<typeof runScenario>>;
try {
  result = await runScenario({ connect });
} finally {
  await cleanup();
}
console.log(
  `\n${result.succeeded} jobs succeeded, ${result.deadLettered} dead-lettered after ${result.retried} retries; first image job ran at priority "${result.firstImage}"`,
);
if (smoke) {
  const ok = result.succeeded === 8 && result.deadLettered === 1 && result.retried === 2 && result.firstImage === "critical";
  if (!ok) {
    console.error("smoke: unexpected outcome", result);
    process.exit(1);
  }
  console.log("smoke: ok");
}
