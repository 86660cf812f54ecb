import { jobSemanticsGroups } from "@jobs/conformance";
import { describe } from "vitest";
import { createMemoryBroker, createMemoryServer, createMemoryStore } from "../src/index.js";

// The job-semantics groups with a job store: every client, worker and admin of a case shares one
// memory store (an in-process store: one instance per case is the shared state). The transport
// groups do not change with a store, so conformance.test.ts runs them once.
const server = createMemoryServer();
const options = {
  name: "memory + memory store",
  createBroker: () => createMemoryBroker({ server }),
  createStore: () => createMemoryStore(),
};
describe(`conformance: ${options.name}`, () => {
  for (const register of jobSemanticsGroups) register(options);
});
