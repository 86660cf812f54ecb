/** Per physical queue: its checked name, its keys in the order each script takes them, and its pending batches. */
import { InvalidOptionsError, type OutgoingMessage, type PublishOutcome } from "@jobs/core/adapter";
import { type RedisQueueKeys, redisQueueKeys } from "../keys.js";

/** A settlement waiting for its batch: 1 done, 0 lease lost. */
export interface Waiter {
  readonly resolve: (value: number) => void;
  readonly reject: (error: unknown) => void;
}

/** A publish call waiting for its batch. */
export interface PublishWaiter {
  readonly outcomes: PublishOutcome[];
  readonly indexes: number[];
  readonly resolve: (outcomes: PublishOutcome[]) => void;
}

/** One queue: its keys and the batches waiting for the next flush. */
export interface QueueState {
  readonly name: string;
  readonly keys: RedisQueueKeys;
  readonly publishKeys: string[];
  readonly fetchKeys: string[];
  readonly settleKeys: string[];
  readonly inspectKeys: string[];
  readonly purgeKeys: string[];
  publishMessages: OutgoingMessage[];
  publishWaiters: PublishWaiter[];
  settleArgs: (string | number)[];
  settleWaiters: Waiter[];
  /** The base of the job store a consumer of this queue is fused with (settle.lua runs fused then). */
  fusedBase: string | undefined;
}

/** The state of a new queue: KEYS of every script (see lua/), no batch yet. */
export function queueState(name: string, prefix: string): QueueState {
  const keys = redisQueueKeys(name, prefix);
  const [w0, w1, w2, w3, w4] = keys.waiting;
  const waiting = [w0, w1, w2, w3, w4] as string[];
  return {
    name,
    keys,
    publishKeys: [keys.body, keys.delayed, keys.seen, keys.seq, keys.wake, ...waiting, keys.seenPrevious, keys.seenSince],
    fetchKeys: [keys.active, keys.body, keys.delayed, keys.wake, ...waiting],
    settleKeys: [keys.active, keys.body, keys.delayed, keys.wake, keys.seq, keys.dead, keys.deadRecords, ...waiting],
    inspectKeys: [keys.active, keys.delayed, keys.dead, keys.deadRecords, ...waiting],
    purgeKeys: [keys.body, keys.delayed, keys.dead, keys.deadRecords, keys.wake, ...waiting],
    publishMessages: [],
    publishWaiters: [],
    settleArgs: [],
    settleWaiters: [],
    fusedBase: undefined,
  };
}

const QUEUE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$/;

/** `queue`, if it is a valid queue name (it becomes a hash tag, so no "{" or "}"); InvalidOptionsError otherwise. */
export function checkQueue(queue: string): string {
  if (typeof queue !== "string" || !QUEUE.test(queue)) {
    throw new InvalidOptionsError("queue", `expected letters, digits, "_", ".", ":" or "-" (no "{" or "}"), got ${JSON.stringify(queue)}`);
  }
  return queue;
}
