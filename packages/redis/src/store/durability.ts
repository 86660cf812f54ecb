/**
 * The store's `config-warning`s: a record write Redis acknowledged is lost on a crash when AOF is
 * off (everything since the last snapshot) or fsynced every second (up to 1 s of writes, e.g. a
 * `succeeded`), and evicted under memory pressure unless the policy is `noeviction`.
 */
import type { Redis } from "ioredis";
import { type ConfigWarning, infoField } from "../connection.js";

/** The warnings of the server's settings; none for what an ACL keeps from being read (INFO, CONFIG). */
export async function storeConfigWarnings(redis: Redis): Promise<ConfigWarning[]> {
  let info: string;
  try {
    info = await redis.info();
  } catch {
    return [];
  }
  const warnings: ConfigWarning[] = [];
  const policy = infoField(info, "maxmemory_policy");
  if (policy !== undefined && policy !== "noeviction") {
    warnings.push({
      code: "JOBS_REDIS_EVICTION",
      message: `[jobs] [redis] store: maxmemory-policy is "${policy}": Redis may evict job records under memory pressure, losing jobs and their results; set it to "noeviction"`,
    });
  }
  const aof = infoField(info, "aof_enabled");
  if (aof === "0") {
    warnings.push({
      code: "JOBS_REDIS_NO_AOF",
      message:
        "[jobs] [redis] store: AOF is off (appendonly no): every record write since the last snapshot (a `succeeded`, a claim, a cancel) is lost if Redis crashes, so a finished job may run again; set appendonly yes with appendfsync always (everysec still loses up to 1 s)",
    });
  } else if (aof === "1" && (await appendfsync(redis)) === "everysec") {
    warnings.push({
      code: "JOBS_REDIS_AOF_EVERYSEC",
      message:
        "[jobs] [redis] store: appendfsync is everysec: up to 1 s of acknowledged record writes (e.g. a `succeeded`) can be lost if Redis crashes, so a finished job may run again; set appendfsync always to close the window",
    });
  }
  return warnings;
}

/** `appendfsync`, or undefined when CONFIG is denied or renamed (managed services). */
async function appendfsync(redis: Redis): Promise<string | undefined> {
  try {
    const reply = (await redis.config("GET", "appendfsync")) as unknown;
    return Array.isArray(reply) && typeof reply[1] === "string" ? reply[1] : undefined;
  } catch {
    return undefined;
  }
}
