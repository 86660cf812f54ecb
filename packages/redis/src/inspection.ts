/** counts, listDeadLetters, removeDeadLetters and purge: inspect.lua and purge.lua. */
import { type DeadLetter, type DeadLetterRecord, InvalidOptionsError, JobsError, type QueueCounts } from "@jobs/core/adapter";
import { connectionError } from "./connection.js";
import type { QueueState } from "./internal/queues.js";
import type { Scripts } from "./internal/scripts.js";

/** Messages removed per purge.lua call: one huge script would block Redis (and trip the dead-connection timeout). */
const PURGE_CHUNK = 2_000;

/** What inspection needs from its broker. */
export interface InspectionHost {
  /** Throws BrokerClosedError once the broker is closed. */
  ensureOpen(): void;
  /** The state of a queue by name (InvalidOptionsError for a bad name). */
  queue(name: string): QueueState;
  readonly scripts: Scripts;
}

export class RedisInspection {
  readonly #host: InspectionHost;

  constructor(host: InspectionHost) {
    this.#host = host;
  }

  async #inspect(queue: string, args: readonly (string | number)[]): Promise<unknown> {
    this.#host.ensureOpen();
    const q = this.#host.queue(queue);
    try {
      return await this.#host.scripts.run("inspect", q.inspectKeys, args, true);
    } catch (error) {
      throw connectionError(`${String(args[0])} failed`, error);
    }
  }

  async counts(queue: string): Promise<QueueCounts> {
    const [waiting, delayed, active, dead] = (await this.#inspect(queue, ["counts"])) as number[];
    return { waiting: waiting ?? 0, delayed: delayed ?? 0, active: active ?? 0, dead: dead ?? 0 };
  }

  async listDeadLetters(queue: string, options: { readonly limit: number; readonly offset?: number }): Promise<DeadLetter[]> {
    const limit = options?.limit;
    const offset = options?.offset ?? 0;
    if (!Number.isInteger(limit) || limit < 0) throw new InvalidOptionsError("limit", "expected a non-negative integer");
    if (!Number.isInteger(offset) || offset < 0) throw new InvalidOptionsError("offset", "expected a non-negative integer");
    if (limit === 0) return [];
    const reply = (await this.#inspect(queue, ["list", offset, limit])) as string[];
    const out: DeadLetter[] = [];
    for (let i = 0; i < reply.length; i += 2) {
      try {
        const r = JSON.parse(reply[i + 1] as string) as DeadLetterRecord;
        out.push({ key: reply[i] as string, body: r.body, reason: r.reason, error: r.error, failedAt: r.failedAt });
      } catch {
        // A record someone wrote by hand: not ours to show.
      }
    }
    return out;
  }

  async removeDeadLetters(queue: string, keys: readonly string[]): Promise<number> {
    if (keys.length === 0) {
      this.#host.ensureOpen();
      return 0;
    }
    return Number(await this.#inspect(queue, ["remove", ...keys]));
  }

  async purge(queue: string): Promise<void> {
    this.#host.ensureOpen();
    const q = this.#host.queue(queue);
    try {
      while ((await this.#host.scripts.run("purge", q.purgeKeys, [PURGE_CHUNK], true)) === PURGE_CHUNK) {
        this.#host.ensureOpen();
      }
    } catch (error) {
      if (JobsError.isInstance(error)) throw error;
      throw connectionError("purge failed", error);
    }
  }
}
