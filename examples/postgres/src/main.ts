// Runs the example scenario on the broker that src/broker.ts connects to, and prints what each job did.
// With --smoke it also checks the outcome and exits non-zero if anything is off (CI runs it).
import { scenarioMain } from "example-shared";
import { cleanup, connect } from "./broker.js";

await scenarioMain({ connect, cleanup, smoke: process.argv.includes("--smoke") });
