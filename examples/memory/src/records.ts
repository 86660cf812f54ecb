// Job records on the in-memory broker: the records example of example-shared with the memory store
// (pnpm --filter example-memory records; --smoke checks the outcome, and the smoke script runs it).
import { createMemoryStore } from "@jobs/memory";
import { recordsMain } from "example-shared";
import { connect } from "./broker.js";

// In process, beside the memory broker only; a networked broker takes a networked store (createRedisStore).
const store = createMemoryStore();
try {
  await recordsMain({ connect, store, smoke: process.argv.includes("--smoke") });
} finally {
  await store.close();
}
