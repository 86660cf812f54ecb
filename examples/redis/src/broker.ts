// The only file that differs between examples: how to reach the broker.
// Redis at JOBS_REDIS_URL (default: a local server); each call opens a new connection.
import type { Broker } from "@jobs/core";
import { createRedisBroker } from "@jobs/redis";

const url = process.env.JOBS_REDIS_URL ?? "redis://127.0.0.1:6379";

/** A new connection to Redis; its keys start with `prefix`. */
export function connect(prefix = "jobs-example"): Broker {
  return createRedisBroker({
    url,
    prefix,
    // A wrong URL fails the first call within this time, naming the host (docs/errors.md).
    connectTimeout: "5s",
    // Warnings (e.g. JOBS_REDIS_NO_AOF on a Redis without persistence) go to this logger; any
    // pino-compatible logger works (docs/concepts/logging.md). Without one they print once each.
    logger: console,
  });
}
