/**
 * Names and the delay ladder: one place maps a physical queue name from core to RabbitMQ objects.
 *
 * Per queue `q` (with the default prefix "jobs."): the work queue `jobs.q` (classic with
 * `x-max-priority` 4, plain classic, or quorum with `x-delivery-limit` dead-lettering into the dead
 * queue), its dead letters `jobs.q.dead`, and its delay ladder `jobs.q.delay.<i>`,
 * i = 0 … levels-1, each holding messages for `unit × 2^i` ms (a queue-wide `x-message-ttl`, so
 * messages expire in FIFO order) and dead-lettering them into the exchange of the level below.
 * The ladder exchanges `jobs.delay.<i>` and `jobs.delay.out` are shared by every queue.
 *
 * A delayed message's routing key spells its delay in binary, one word per level from the highest
 * down, then the queue: "0.1.1.q" waits 2 + 1 units and lands in `jobs.q`. Exchange i routes a key
 * whose bit i is 1 to `jobs.q.delay.i` and one whose bit i is 0 straight on to exchange i-1.
 */
import { InvalidOptionsError } from "@jobs/core/adapter";
import type { Channel } from "amqplib";

/** RabbitMQ refuses longer queue and exchange names (shortstr). */
const MAX_NAME_BYTES = 255;
/** Core's physical names are `[A-Za-z0-9_-]`; anything else could break topic routing. */
const QUEUE_NAME = /^[A-Za-z0-9_-]+$/;

/** Priorities 0…4 map directly onto `x-max-priority` levels. */
export const MAX_PRIORITY = 4;

/** The RabbitMQ objects of one physical queue. */
export interface QueueNames {
  /** Physical queue name as core gave it (the last word of ladder routing keys). */
  readonly queue: string;
  /** The work queue. */
  readonly work: string;
  /** Its dead letters. */
  readonly dead: string;
  /** Its delay queues, index = level. */
  readonly delays: readonly string[];
}

/** Validates the prefix once (at construction). */
export function assertPrefix(prefix: string): void {
  if (typeof prefix !== "string") throw new InvalidOptionsError("prefix", "expected a string");
  if (prefix.startsWith("amq.")) throw new InvalidOptionsError("prefix", 'names starting with "amq." are reserved by RabbitMQ');
  if (!/^[A-Za-z0-9_.:-]*$/.test(prefix)) throw new InvalidOptionsError("prefix", "expected letters, digits and . _ : -");
  if (Buffer.byteLength(prefix) > 100) throw new InvalidOptionsError("prefix", "expected at most 100 bytes");
}

/** Maps a physical queue name to its objects; a typed error, before any broker call, for a name RabbitMQ would refuse. */
export function queueNames(prefix: string, queue: string, levels: number): QueueNames {
  if (typeof queue !== "string" || !QUEUE_NAME.test(queue)) {
    throw new InvalidOptionsError(
      "queue",
      `${JSON.stringify(String(queue)).slice(0, 80)} is not valid on RabbitMQ here: expected [A-Za-z0-9_-]+`,
    );
  }
  const work = `${prefix}${queue}`;
  if (work.startsWith("amq.")) throw new InvalidOptionsError("queue", `RabbitMQ reserves names starting with "amq."`);
  const longest = `${work}.delay.${levels - 1}`;
  if (Buffer.byteLength(longest) > MAX_NAME_BYTES) {
    throw new InvalidOptionsError("queue", `too long for RabbitMQ: "${longest.slice(0, 40)}…" exceeds ${MAX_NAME_BYTES} bytes`);
  }
  return { queue, work, dead: `${work}.dead`, delays: Array.from({ length: levels }, (_, i) => `${work}.delay.${i}`) };
}

/** `queueNames`, remembered per queue. */
export function namesCache(prefix: string, levels: number): (queue: string) => QueueNames {
  const cache = new Map<string, QueueNames>();
  return (queue) => {
    let names = cache.get(queue);
    if (names === undefined) {
      names = queueNames(prefix, queue, levels);
      cache.set(queue, names);
    }
    return names;
  };
}

/** Exchange of ladder level i; level -1 is the exchange that routes due messages to their work queue. */
export function ladderExchange(prefix: string, level: number): string {
  return level < 0 ? `${prefix}delay.out` : `${prefix}delay.${level}`;
}

/** Routing key spelling `units` in binary over `levels` words, highest level first, then the queue. */
export function delayRoutingKey(units: number, levels: number, queue: string): string {
  let key = "";
  for (let i = levels - 1; i >= 0; i--) key += Math.floor(units / 2 ** i) % 2 === 1 ? "1." : "0.";
  return key + queue;
}

/** Topic pattern: `bit` at level `level`, any bit elsewhere, then `tail` (a queue name, or "#"). */
function levelPattern(level: number, levels: number, bit: "0" | "1", tail: string): string {
  const words: string[] = [];
  for (let i = levels - 1; i >= 0; i--) words.push(i === level ? bit : "*");
  return `${words.join(".")}.${tail}`;
}

/** Declares the shared ladder exchanges and their pass-through bindings (once per connection). */
export async function declareLadder(ch: Channel, prefix: string, levels: number): Promise<void> {
  await ch.assertExchange(ladderExchange(prefix, -1), "topic", { durable: true });
  for (let i = 0; i < levels; i++) {
    await ch.assertExchange(ladderExchange(prefix, i), "topic", { durable: true });
    await ch.bindExchange(ladderExchange(prefix, i - 1), ladderExchange(prefix, i), levelPattern(i, levels, "0", "#"));
  }
}

/** How work queues are declared. */
export type WorkQueueKind =
  | { readonly type: "classic"; readonly priority: boolean }
  | { readonly type: "quorum"; readonly deliveryLimit: number };

/**
 * Declares a queue's work and dead-letter queues (all that ready messages and dead letters need).
 * The dead queue comes first: a quorum work queue dead-letters into it.
 */
export async function declareWork(ch: Channel, names: QueueNames, kind: WorkQueueKind): Promise<void> {
  await ch.assertQueue(names.dead, { durable: true, arguments: { "x-queue-type": "classic" } });
  await ch.assertQueue(names.work, { durable: true, arguments: workQueueArguments(names, kind) });
}

/** Declares a queue's delay ladder and the bindings that bring due messages back (after `declareLadder`). */
export async function declareDelays(ch: Channel, prefix: string, names: QueueNames, unitMs: number): Promise<void> {
  const levels = names.delays.length;
  await ch.bindQueue(names.work, ladderExchange(prefix, -1), `#.${names.queue}`);
  for (let i = 0; i < levels; i++) {
    const delay = names.delays[i] as string;
    await ch.assertQueue(delay, { durable: true, arguments: delayQueueArguments(prefix, i, unitMs) });
    await ch.bindQueue(delay, ladderExchange(prefix, i), levelPattern(i, levels, "1", names.queue));
  }
}

/**
 * Arguments of a work queue (a redeclare must repeat them exactly). A quorum queue past its
 * delivery limit dead-letters through the default exchange straight into the queue's dead queue.
 */
export function workQueueArguments(names: QueueNames, kind: WorkQueueKind): Record<string, unknown> {
  if (kind.type === "quorum") {
    return {
      "x-queue-type": "quorum",
      "x-delivery-limit": kind.deliveryLimit,
      "x-dead-letter-exchange": "",
      "x-dead-letter-routing-key": names.dead,
    };
  }
  return kind.priority ? { "x-queue-type": "classic", "x-max-priority": MAX_PRIORITY } : { "x-queue-type": "classic" };
}

/** Arguments of delay queue `level`. */
export function delayQueueArguments(prefix: string, level: number, unitMs: number): Record<string, unknown> {
  return { "x-queue-type": "classic", "x-message-ttl": unitMs * 2 ** level, "x-dead-letter-exchange": ladderExchange(prefix, level - 1) };
}
