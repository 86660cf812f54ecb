/** `@jobs/redis`: the Broker and JobStore contracts on Redis (ioredis), every move an atomic Lua script. */
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
export { type RedisStoreKeys, redisStoreKeys } from "./store/keys.js";
export type { RedisStoreOptions } from "./store/options.js";
export {
  createRedisStore,
  type RedisStore,
  type RedisStoreEventMap,
  redisStoreCapabilities,
} from "./store/store.js";
