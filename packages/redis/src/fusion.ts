/**
 * Fusion of the Redis broker with a Redis store on the same server (docs/adapters/redis.md, "The
 * Redis store"): a worker's fetch also claims each delivery's record, and its ack also writes the
 * record's finish, in the same script call. Without it a job pays two more round trips in sequence
 * (claim, finish). Fused only when the store is a Redis store that the broker's own connection
 * sees (one server and database, proven by a probe key), and neither side is a Cluster (the
 * broker's keys and the store's are in different slots).
 */
import { randomUUID } from "node:crypto";
import type { JobStore } from "@jobs/core/adapter";
import type { Redis } from "ioredis";

/** What a Redis store offers the broker for fusion (symbol-keyed: not part of the public API). */
export interface FusionSource {
  /** The store's key base (`<prefix>:{<prefix>:store}:`). */
  readonly base: string;
  /** The store's connection is to a Redis Cluster. */
  readonly cluster: boolean;
  /** Writes `token` under the store's probe key (through the store's own connection). */
  probe(token: string): Promise<void>;
}

export const kFusion: unique symbol = Symbol.for("@jobs/redis/fusion");

/** The probe key of a store base. */
export function probeKey(base: string): string {
  return `${base}fusion-probe`;
}

/**
 * The store's base when `store` can be fused with the broker whose command connection is
 * `command`, else undefined (core then claims and finishes through the store itself).
 */
export async function fusionBase(store: JobStore, command: Redis): Promise<string | undefined> {
  const source = (store as unknown as Partial<Record<typeof kFusion, FusionSource>>)[kFusion];
  if (source === undefined || source.cluster || command.isCluster) return undefined;
  try {
    const token = randomUUID();
    await source.probe(token);
    return (await command.get(probeKey(source.base))) === token ? source.base : undefined;
  } catch {
    return undefined;
  }
}
