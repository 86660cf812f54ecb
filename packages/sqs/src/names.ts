import { createHash } from "node:crypto";
import { InvalidOptionsError } from "@jobs/core/adapter";

/** SQS queue names: 1-80 letters, digits, `_` and `-`, plus `.fifo` for FIFO queues (counted in the 80). */
const SQS_NAME = /^[A-Za-z0-9_-]{1,80}$/;
const SAFE = /^[A-Za-z0-9_-]+$/;
const DEAD = "-dead";
const FIFO = ".fifo";

/** The SQS names behind one physical queue. */
export interface SqsQueueNames {
  /** The work queue. */
  readonly queue: string;
  /** Its dead letters (`<queue>-dead`). */
  readonly dead: string;
}

/** Throws `InvalidOptionsError` unless `prefix` can start an SQS queue name. */
export function assertPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== "string" || !/^[A-Za-z0-9_-]{0,40}$/.test(prefix)) {
    throw new InvalidOptionsError("prefix", `expected up to 40 letters, digits, "_" or "-", got ${JSON.stringify(prefix)}`);
  }
}

/**
 * Maps a physical queue name to SQS names, deterministically and with no call to SQS. Names that
 * are SQS-safe and short enough stay readable (`<prefix><queue>`); any other name (a character SQS
 * forbids, too long once prefixed and suffixed, or ending in "-dead", which would meet another
 * queue's dead-letter queue) keeps its safe characters and gets a hash of the original, so two
 * names never share a queue.
 */
export function sqsQueueNames(queue: string, options: { readonly prefix?: string; readonly fifo?: boolean } = {}): SqsQueueNames {
  const prefix = options.prefix ?? "jobs-";
  assertPrefix(prefix);
  if (typeof queue !== "string" || queue === "") throw new InvalidOptionsError("queue", "expected a non-empty queue name");
  const suffix = options.fifo === true ? FIFO : "";
  const budget = 80 - prefix.length - DEAD.length - suffix.length;
  let base = queue;
  if (!SAFE.test(queue) || queue.length > budget || queue.endsWith(DEAD)) {
    const hash = createHash("sha256").update(queue).digest("hex").slice(0, 12);
    base = `${queue.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, budget - hash.length - 1)}-${hash}`;
  }
  const names = { queue: `${prefix}${base}${suffix}`, dead: `${prefix}${base}${DEAD}${suffix}` };
  for (const name of [names.queue, names.dead]) {
    // Unreachable with a valid prefix; kept so that no unchecked name ever reaches SQS.
    if (!SQS_NAME.test(name.slice(0, name.length - suffix.length)) || name.length > 80) {
      throw new InvalidOptionsError("queue", `"${name}" is not a valid SQS queue name`);
    }
  }
  return names;
}
