// Runs the example scenario on the broker that src/broker.ts connects to, and prints what each job did.
// With --smoke it also checks the outcome and exits non-zero if anything is off (CI runs it).
import { scenarioMain } from "example-shared";
import { connect } from "./broker.js";

await scenarioMain({ connect, smoke: process.argv.includes("--smoke") });
