/** The Redis keys of one physical queue. */
export interface RedisQueueKeys {
  /** Waiting lists, priority level 0 (trivial) to 4 (critical): LPUSH to enqueue, RPOP to take. */
  readonly waiting: readonly [string, string, string, string, string];
  /** Sorted set of delayed message keys, scored by due time (ms). */
  readonly delayed: string;
  /** Hash of message key → body, for every waiting, delayed and in-flight message. */
  readonly body: string;
  /** Sorted set of in-flight deliveries ("<key>#<deliveries>"), scored by lease deadline (ms). */
  readonly active: string;
  /** Sorted set of dead letter keys, scored by order of arrival. */
  readonly dead: string;
  /** Hash of dead letter key → record (JSON: body, reason, error, failedAt). */
  readonly deadRecords: string;
  /** Set of job ids published with dedupe, current generation (ids are remembered one to two windows). */
  readonly seen: string;
  /** Set of job ids of the previous dedupe generation. */
  readonly seenPrevious: string;
  /** Start of the current dedupe generation (ms). */
  readonly seenSince: string;
  /** Counter of message keys (and order of dead letters). */
  readonly seq: string;
  /** List a consumer with nothing to do blocks on (BLPOP); a publish pushes a token. */
  readonly wake: string;
}

/**
 * The keys of a queue: `<prefix>:{<queue>}:<part>`. The hash tag `{<queue>}` puts every key of a
 * queue in one Redis Cluster slot, so each Lua script touches a single slot.
 */
export function redisQueueKeys(queue: string, prefix = "jobs"): RedisQueueKeys {
  const base = `${prefix}:{${queue}}:`;
  return {
    waiting: [`${base}w0`, `${base}w1`, `${base}w2`, `${base}w3`, `${base}w4`],
    delayed: `${base}delayed`,
    body: `${base}body`,
    active: `${base}active`,
    dead: `${base}dead`,
    deadRecords: `${base}dead-records`,
    seen: `${base}seen`,
    seenPrevious: `${base}seen-previous`,
    seenSince: `${base}seen-since`,
    seq: `${base}seq`,
    wake: `${base}wake`,
  };
}
