import type { BrokerCapabilities } from "./broker.js";
import type { PriorityLevel } from "./priority.js";

const LEVELS_HIGH_FIRST: readonly PriorityLevel[] = [4, 3, 2, 1, 0];

/**
 * The physical queue a job of `level` goes to. With native priority it is the logical queue
 * itself; otherwise core emulates priority with one physical queue per level, `<queue>__p<level>`
 * (user queue names cannot contain `__`, so these never collide).
 */
export function physicalQueue(queue: string, level: PriorityLevel, caps: BrokerCapabilities): string {
  return caps.priority === "native" ? queue : `${queue}__p${level}`;
}

/** Every physical queue behind a logical queue, highest priority first, with its level (undefined when native). */
export function physicalQueues(
  queue: string,
  caps: BrokerCapabilities,
): readonly { readonly name: string; readonly level: PriorityLevel | undefined }[] {
  if (caps.priority === "native") return [{ name: queue, level: undefined }];
  return LEVELS_HIGH_FIRST.map((level) => ({ name: `${queue}__p${level}`, level }));
}
