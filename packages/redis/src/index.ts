/** `@jobs/redis`: the Broker contract on Redis (ioredis), every move an atomic Lua script. */
import { RedisAdapter, type RedisBroker } from "./broker.js";
import type { RedisBrokerOptions } from "./options.js";

export type { RedisBroker } from "./broker.js";
export { redisCapabilities } from "./capabilities.js";
export { type RedisQueueKeys, redisQueueKeys } from "./keys.js";
export type { RedisBrokerOptions } from "./options.js";

/** Creates a broker on Redis (ioredis): atomic Lua scripts for every move, one hash tag per queue. */
export function createRedisBroker(options: RedisBrokerOptions = {}): RedisBroker {
  return new RedisAdapter(options);
}
