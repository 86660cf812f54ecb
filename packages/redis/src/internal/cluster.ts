/**
 * Redis Cluster: a template client that is an ioredis `Cluster`. Every key of a queue carries the
 * hash tag `{<queue>}` (keys.ts), so each script and each BLPOP touches one slot, and a cluster
 * client routes them like any single-slot command.
 */
import type { Cluster, Redis, RedisOptions } from "ioredis";

/** True for an ioredis `Cluster` (its `isCluster` flag, not its class: two installed copies have two classes). */
export function isCluster(client: Redis | Cluster): client is Cluster {
  return (client as { isCluster?: unknown }).isCluster === true;
}

/**
 * A new cluster client with the template's startup nodes and options, and the broker's safe
 * settings: the per-connection ones go to every node connection (`redisOptions`), reconnecting and
 * queueing while offline are the cluster's own (`clusterRetryStrategy`, `enableOfflineQueue`).
 */
export function duplicateCluster(template: Cluster, settings: RedisOptions): Cluster {
  const { retryStrategy, enableOfflineQueue, host, port, path, sentinels, readOnly, ...node } = settings;
  return template.duplicate([], {
    redisOptions: { ...template.options.redisOptions, ...node },
    enableOfflineQueue: enableOfflineQueue ?? true,
    ...(typeof retryStrategy === "function" ? { clusterRetryStrategy: (times: number) => retryStrategy(times) } : {}),
  } as Parameters<Cluster["duplicate"]>[1]);
}
