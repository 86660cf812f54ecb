import { runConformance } from "@jobs/conformance";
import { createMemoryBroker, createMemoryServer } from "../src/index.js";

// Every instance shares one server, the way connections share a real broker.
const server = createMemoryServer();
runConformance({ name: "memory", createBroker: () => createMemoryBroker({ server }) });

// Native priority off and a 200 ms native delay limit: core's priority emulation and re-delay on receipt run too.
const emulated = createMemoryServer();
runConformance({
  name: "memory (emulated priority, 200 ms native delay)",
  createBroker: () => createMemoryBroker({ server: emulated, priority: "none", maxDelay: 200 }),
});
