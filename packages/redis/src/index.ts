// @jobs/redis: the Broker contract on Redis (ioredis), every move an atomic Lua script.
export { type RedisQueueKeys, redisQueueKeys } from "./keys.js";
export { createRedisBroker, type RedisBrokerOptions, redisCapabilities } from "./redis-broker.js";
