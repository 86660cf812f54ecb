import type { Broker, DeadLetter, DeadLetterReason, QueueCounts } from "./broker.js";
import { type Codec, type CodecOptions, createCodec, IDENTITY_CODEC, sealedValue } from "./codec.js";
import { decodeEnvelope, type Envelope, encodeEnvelope } from "./envelope.js";
import { InvalidOptionsError, type SerializedError } from "./errors.js";
import { forwardingBrokerEntries } from "./internal/entries.js";
import { assertLogger, type LoggerOption } from "./logger.js";
import { assertQueueName } from "./names.js";
import { PRIORITIES, type PriorityLevel } from "./priority.js";
import { storeOption } from "./records.js";
import { physicalQueues } from "./routing.js";
import type { JobStore } from "./store.js";

/** Options of `createAdmin`. */
export interface AdminOptions {
  /** The broker to inspect. */
  readonly broker: Broker;
  /**
   * Where the broker's warnings and errors are logged (pino, console, …: `Logger`), when the
   * broker was not given this logger itself. `false` adds nothing.
   * @default none: the broker's own default applies
   */
  readonly logger?: LoggerOption;
  /**
   * The job store of the clients and workers on this broker, if they have one: a requeue then
   * moves the job's record from `dead` back to `waiting` (a new generation) before it publishes,
   * or the worker's claim would drop the requeued message. @default none
   */
  readonly store?: JobStore;
  /**
   * The clients' and workers' keys (docs/security.md). With `signing`, a requeue re-signs only dead
   * letters whose signature checks (any other body is put back as it is, and refused again); with
   * `encryption`, `listDeadLetters` adds the decrypted `payload`. Dead letters stay sealed in the
   * broker either way. @default none: requeued jobs go unsigned, payloads are shown sealed
   */
  readonly codec?: CodecOptions;
}

/** A dead letter, decoded when possible. Payloads are shown as a bounded excerpt. */
export interface DeadLetterView {
  /** Key for `requeueDeadLetters` / `removeDeadLetters`. */
  readonly key: string;
  /** Job id, when the body could be decoded. */
  readonly id?: string;
  /** Job name, when the body could be decoded. */
  readonly name?: string;
  /** Attempts made. */
  readonly attempt?: number;
  /** Why it was dead-lettered. */
  readonly reason: DeadLetterReason;
  /** The last error. */
  readonly error: SerializedError;
  /** When, ms since the epoch. */
  readonly failedAt: number;
  /** The payload, decrypted: only when the admin has the encryption key of a sealed payload. */
  readonly payload?: unknown;
  /** The stored body, or its first bytes and "…" when longer than `excerptBytes` UTF-8 bytes (the whole excerpt stays within them). */
  readonly excerpt: string;
}

/** Inspection and administration of queues. Separate from the client on purpose: no message can trigger these. */
export interface Admin {
  /** Counts summed over the physical queues behind a logical queue. */
  counts(queue: string): Promise<QueueCounts>;
  /** Dead letters of a queue, oldest first. */
  listDeadLetters(queue: string, options?: { readonly limit?: number; readonly excerptBytes?: number }): Promise<DeadLetterView[]>;
  /**
   * Put dead letters back as fresh jobs (attempt 1, due now, same id), then remove them from the
   * dead letters. All of the queue's dead letters unless `keys` is given. Resolves to how many.
   */
  requeueDeadLetters(queue: string, options?: { readonly keys?: readonly string[]; readonly limit?: number }): Promise<number>;
  /** Remove dead letters for good. */
  removeDeadLetters(queue: string, keys: readonly string[]): Promise<number>;
  /** Remove every waiting, delayed and dead job of a queue. */
  purge(queue: string): Promise<void>;
}

/** Creates the admin API over a broker. */
export function createAdmin(options: AdminOptions): Admin {
  const broker = options?.broker;
  if (typeof broker?.counts !== "function") throw new InvalidOptionsError("broker", "createAdmin needs a broker");
  assertLogger(options?.logger);
  const store = storeOption(options?.store, broker.name);
  const codec = createCodec(options?.codec);
  const caps = broker.capabilities;
  const physical = (queue: string): readonly { name: string; level: PriorityLevel | undefined }[] => {
    assertQueueName(queue, "queue");
    return physicalQueues(queue, caps);
  };
  async function allDead(queue: string, limit: number): Promise<{ physical: string; entry: DeadLetter }[]> {
    const out: { physical: string; entry: DeadLetter }[] = [];
    for (const p of physical(queue)) {
      if (out.length >= limit) break;
      for (const entry of await broker.listDeadLetters(p.name, { limit: limit - out.length })) out.push({ physical: p.name, entry });
    }
    return out.sort((a, b) => a.entry.failedAt - b.entry.failedAt);
  }
  return forwardingBrokerEntries(broker, options?.logger, {
    async counts(queue) {
      const all = await Promise.all(physical(queue).map((p) => broker.counts(p.name)));
      return all.reduce(
        (sum, c) => ({
          waiting: sum.waiting + c.waiting,
          delayed: sum.delayed + c.delayed,
          active: sum.active + c.active,
          dead: sum.dead + c.dead,
        }),
        { waiting: 0, delayed: 0, active: 0, dead: 0 },
      );
    },
    async listDeadLetters(queue, opts) {
      const limit = opts?.limit ?? 100;
      const excerptBytes = opts?.excerptBytes ?? 1024;
      if (!Number.isInteger(excerptBytes) || excerptBytes < 4) {
        throw new InvalidOptionsError("excerptBytes", `expected an integer of at least 4, got ${String(excerptBytes)}`);
      }
      return (await allDead(queue, limit)).map(({ entry }) => {
        const env = tryDecode(entry.body);
        const view = {
          key: entry.key,
          reason: entry.reason,
          error: entry.error,
          failedAt: entry.failedAt,
          excerpt: excerptOf(entry.body, excerptBytes),
        };
        if (env === undefined) return view;
        const decoded = { ...view, id: env.id, name: env.name, attempt: env.attempt };
        const payload = codec.encrypts && sealedValue(env.payload) !== undefined ? tryOpen(codec, env) : undefined;
        return payload === undefined ? decoded : { ...decoded, payload: payload.value };
      });
    },
    async requeueDeadLetters(queue, opts) {
      const wanted = opts?.keys === undefined ? undefined : new Set(opts.keys);
      const entries = (await allDead(queue, opts?.limit ?? 10_000)).filter((e) => wanted === undefined || wanted.has(e.entry.key));
      let count = 0;
      for (const { physical: from, entry } of entries) {
        // Only a body whose signature checks is re-signed: a forged dead letter must not come back signed.
        const env = tryDecode(entry.body, codec);
        const now = Date.now();
        let requeued = env === undefined ? undefined : fresh(env, now);
        if (requeued !== undefined && store !== undefined) {
          const gen = await revive(store, requeued, now);
          if (gen === false) {
            // The record is no longer dead (requeued already, or requeued and finished): only the stale dead letter goes.
            count += await broker.removeDeadLetters(from, [entry.key]);
            continue;
          }
          requeued = gen === undefined ? withoutGen(requeued) : { ...requeued, gen };
        }
        const body = requeued === undefined ? entry.body : codec.sign(encodeEnvelope(requeued));
        const level = env === undefined ? 2 : (PRIORITIES.indexOf(env.priority) as PriorityLevel);
        const [outcome] = await broker.publish(from, [{ id: env?.id ?? entry.key, body, priority: level, delayMs: 0, dedupe: false }]);
        if (outcome === undefined || !outcome.ok) throw outcome?.error ?? new Error("[jobs] requeue publish returned no outcome");
        if (store !== undefined && requeued?.gen !== undefined) await store.markPublished([{ id: requeued.id, gen: requeued.gen }]);
        count += await broker.removeDeadLetters(from, [entry.key]);
      }
      return count;
    },
    async removeDeadLetters(queue, keys) {
      let removed = 0;
      for (const p of physical(queue)) removed += await broker.removeDeadLetters(p.name, keys);
      return removed;
    },
    async purge(queue) {
      await Promise.all(physical(queue).map((p) => broker.purge(p.name)));
    },
  });
}

/**
 * At most `maxBytes` UTF-8 bytes of `body`: the body itself when it fits, else its longest prefix
 * that fits together with "…", cut on a character boundary. Bytes, not characters: a body of
 * three-byte characters would otherwise yield three times the bound.
 */
function excerptOf(body: string, maxBytes: number): string {
  if (body.length * 3 <= maxBytes) return body;
  // The first maxBytes characters hold at least maxBytes bytes whenever the body has more.
  const head = Buffer.from(body.slice(0, maxBytes + 1), "utf8");
  if (head.length <= maxBytes && body.length <= maxBytes) return body;
  let cut = Math.max(0, maxBytes - 3);
  while (cut > 0 && ((head[cut] as number) & 0xc0) === 0x80) cut--;
  return `${head.subarray(0, cut).toString("utf8")}…`;
}

/**
 * Moves a requeued job's record `dead → waiting` with a new generation: resolves to that
 * generation, undefined when the job has no record (its message gets one at claim), false when
 * the record is not dead.
 */
async function revive(store: JobStore, env: Envelope, now: number): Promise<number | false | undefined> {
  const record = await store.transition({ id: env.id, from: ["dead"], to: "waiting", bumpGen: true, attempt: 1, runAt: now });
  if (record !== undefined) return record.gen;
  return (await store.get(env.id)) === undefined ? undefined : false;
}

function withoutGen(env: Envelope): Envelope {
  const { gen: _, ...rest } = env;
  return rest;
}

function fresh(env: Envelope, now: number): Envelope {
  const { lastError: _dropped, ...rest } = env;
  return { ...rest, attempt: 1, runAt: now };
}

function tryDecode(body: string, codec: Codec = IDENTITY_CODEC): Envelope | undefined {
  try {
    return decodeEnvelope(codec.verify(body), Number.POSITIVE_INFINITY);
  } catch {
    return undefined;
  }
}

function tryOpen(codec: Codec, env: Envelope): { value: unknown } | undefined {
  try {
    return { value: codec.openPayload(env.payload, env.id, env.name) };
  } catch {
    return undefined;
  }
}
