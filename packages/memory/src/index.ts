export {
  createMemoryBroker,
  createMemoryServer,
  type MemoryBroker,
  type MemoryBrokerOptions,
  MemoryServer,
  memoryCapabilities,
} from "./memory-broker.js";
