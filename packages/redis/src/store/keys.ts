/** The Redis keys of a job store. */

/** Where a store keeps its records: every key under one hash tag. */
export interface RedisStoreKeys {
  /** `<prefix>:{<prefix>:store}:`: the start of every key; each script builds its keys from it. */
  readonly base: string;
  /** The record of a job: a hash with the fields of `StoredJob` and its insertion order (`seq`). */
  job(id: string): string;
  /** Sorted set of every id, scored by insertion order (`list` with no filter). */
  readonly all: string;
  /** Counter of insertions: the score of every index. */
  readonly seq: string;
  /** Sorted set of the ids that are neither terminal nor published, scored by their last write (ms, store clock). */
  readonly unpublished: string;
  /** Channel on which every terminal status is published as "<status> <id>" (`watch`). */
  readonly finished: string;
}

/**
 * The keys of a store: `<prefix>:{<prefix>:store}:<part>`. The hash tag `{<prefix>:store}` puts
 * every key of a store in one Redis Cluster slot, so each Lua script touches a single slot. A
 * queue name has no ":", so no broker queue shares the tag. Parts: `job:<id>` (hash), `all`,
 * `open` (records not terminal), `status:<status>` (only blocked, scheduled, retrying, dead,
 * cancelled and discarded: the hot statuses waiting, active and succeeded have none, so a claim
 * and a finish touch few keys), `queue:<queue>`, `name:<name>`, `tag:<tag>` (sorted sets by
 * insertion order), `finished:<status>:<name>` (terminal records by finish time, for retention), `seq`,
 * `unpublished` (sorted set by last write), `lease:<name>` (string with PX), and the channel
 * `finished`.
 */
export function redisStoreKeys(prefix = "jobs"): RedisStoreKeys {
  const base = `${prefix}:{${prefix}:store}:`;
  return {
    base,
    job: (id) => `${base}job:${id}`,
    all: `${base}all`,
    seq: `${base}seq`,
    unpublished: `${base}unpublished`,
    finished: `${base}finished`,
  };
}
