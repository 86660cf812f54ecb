import { brokerClosedError, type OutgoingMessage, type PublishOutcome, payloadTooLarge } from "@jobs/core/adapter";
import type { MemoryConnection } from "./connection.js";

/** publish(): each message is checked, deduplicated by id, then queued ready or delayed. */
export class MemoryPublisher {
  readonly #connection: MemoryConnection;
  readonly #maxPayloadBytes: number;
  readonly #dedupeWindowMs: number;
  #publishes = 0;

  constructor(connection: MemoryConnection, limits: { readonly maxPayloadBytes: number; readonly dedupeWindowMs: number }) {
    this.#connection = connection;
    this.#maxPayloadBytes = limits.maxPayloadBytes;
    this.#dedupeWindowMs = limits.dedupeWindowMs;
  }

  publish(queueName: string, messages: readonly OutgoingMessage[]): Promise<PublishOutcome[]> {
    if (this.#connection.closed) return Promise.reject(brokerClosedError("memory"));
    const server = this.#connection.server;
    const queue = server.queue(queueName);
    const now = Date.now();
    const dedupe = server.dedupe;
    if (++this.#publishes % 1024 === 0) this.#sweepDedupe(dedupe, now);
    const outcomes: PublishOutcome[] = [];
    for (const m of messages) {
      const tooLarge = payloadTooLarge(m.body, this.#maxPayloadBytes);
      if (tooLarge !== undefined) {
        outcomes.push({ ok: false, error: tooLarge });
        continue;
      }
      if (m.dedupe && this.#dedupeWindowMs > 0) {
        const key = `${queueName}\u0000${m.id}`;
        const until = dedupe.get(key);
        if (until !== undefined && until > now) {
          outcomes.push({ ok: true, duplicate: true });
          continue;
        }
        dedupe.delete(key);
        dedupe.set(key, now + this.#dedupeWindowMs);
      }
      // `local` is core's pre-split copy of this very body (the contract requires it to match).
      queue.add({ id: m.id, body: m.body, priority: m.priority, deliveryCount: 0, local: m.local }, m.delayMs);
      outcomes.push({ ok: true, duplicate: false });
    }
    return Promise.resolve(outcomes);
  }

  /** Forgets expired ids, up to the first live one: entries are in the order they were set (delete before set). */
  #sweepDedupe(dedupe: Map<string, number>, now: number): void {
    for (const [key, until] of dedupe) {
      if (until > now) break;
      dedupe.delete(key);
    }
  }
}
