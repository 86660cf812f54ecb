/** publish(): per-message checks, then one publish.lua call per queue and tick, and an outcome per message. */
import {
  EnqueueOutcomeUnknownError,
  InvalidOptionsError,
  type JobsError,
  type OutgoingMessage,
  type PublishOutcome,
  payloadTooLarge,
  redactedCause,
  redactedMessage,
} from "@jobs/core/adapter";
import { connectionError, isReplyError } from "./connection.js";
import type { QueueState } from "./internal/queues.js";
import type { Scripts } from "./internal/scripts.js";

const STORED: PublishOutcome = Object.freeze({ ok: true, duplicate: false });
const DUPLICATE: PublishOutcome = Object.freeze({ ok: true, duplicate: true });

/** The per-queue batches a publish joins. */
export interface PublishBatches {
  queue(name: string): QueueState;
  schedule(q: QueueState, soon: boolean): void;
}

export class RedisPublisher {
  readonly #batches: PublishBatches;
  readonly #scripts: Scripts;
  readonly #maxPayloadBytes: number;
  readonly #dedupeWindowMs: number;

  constructor(batches: PublishBatches, scripts: Scripts, maxPayloadBytes: number, dedupeWindowMs: number) {
    this.#batches = batches;
    this.#scripts = scripts;
    this.#maxPayloadBytes = maxPayloadBytes;
    this.#dedupeWindowMs = dedupeWindowMs;
  }

  /** Checks each message and adds the valid ones to the queue's next batch (sent at the end of this tick). */
  publish(queue: string, messages: readonly OutgoingMessage[]): Promise<PublishOutcome[]> {
    let q: QueueState;
    try {
      q = this.#batches.queue(queue);
    } catch (error) {
      return Promise.reject(error);
    }
    const outcomes: PublishOutcome[] = new Array(messages.length);
    const indexes: number[] = [];
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as OutgoingMessage;
      const tooLarge = payloadTooLarge(m.body, this.#maxPayloadBytes);
      if (tooLarge !== undefined) {
        outcomes[i] = { ok: false, error: tooLarge };
        continue;
      }
      if (!(m.priority >= 0 && m.priority <= 4 && Number.isInteger(m.priority))) {
        outcomes[i] = { ok: false, error: new InvalidOptionsError("priority", `expected a level from 0 to 4, got ${String(m.priority)}`) };
        continue;
      }
      indexes.push(i);
      q.publishMessages.push(m);
    }
    if (indexes.length === 0) return Promise.resolve(outcomes);
    return new Promise((resolve) => {
      q.publishWaiters.push({ outcomes, indexes, resolve });
      this.#batches.schedule(q, true);
    });
  }

  /** Sends the queue's pending publishes as one call and settles each waiting publish. */
  send(q: QueueState): Promise<void> {
    const messages = q.publishMessages;
    const waiters = q.publishWaiters;
    q.publishMessages = [];
    q.publishWaiters = [];
    return this.#scripts.run("publish", q.publishKeys, publishArgs(this.#dedupeWindowMs, messages), true).then(
      (reply) => {
        const flags = reply as number[];
        let k = 0;
        for (const w of waiters) {
          for (const i of w.indexes) w.outcomes[i] = flags[k++] === 1 ? DUPLICATE : STORED;
          w.resolve(w.outcomes);
        }
      },
      (error: unknown) => {
        // A server error reply means the script did not run; anything else (timeout, lost connection) leaves it unknown.
        const failure: JobsError = isReplyError(error)
          ? connectionError("publish refused", error)
          : new EnqueueOutcomeUnknownError(
              `[jobs] [redis] publish failed, the messages may or may not be stored: ${redactedMessage(error)}`,
              {
                cause: redactedCause(error),
              },
            );
        for (const w of waiters) {
          for (const i of w.indexes) w.outcomes[i] = { ok: false, error: failure };
          w.resolve(w.outcomes);
        }
      },
    );
  }
}

/**
 * ARGV of publish.lua. A batch whose messages share priority, delay and dedupe (an `enqueueMany`
 * of one job, or concurrent single enqueues) sends those once and then only ids and bodies.
 */
function publishArgs(windowMs: number, messages: readonly OutgoingMessage[]): (string | number)[] {
  const first = messages[0] as OutgoingMessage;
  const delayOf = (m: OutgoingMessage): number => (m.delayMs > 0 ? Math.ceil(m.delayMs) : 0);
  const delay = delayOf(first);
  let uniform = true;
  for (const m of messages) {
    if (m.priority !== first.priority || m.dedupe !== first.dedupe || delayOf(m) !== delay) {
      uniform = false;
      break;
    }
  }
  if (uniform) {
    const args: (string | number)[] = [windowMs, "u", first.priority, delay, first.dedupe ? 1 : 0];
    for (const m of messages) args.push(m.id, m.body);
    return args;
  }
  const args: (string | number)[] = [windowMs, "m"];
  for (const m of messages) args.push(m.id, m.body, m.priority, delayOf(m), m.dedupe ? 1 : 0);
  return args;
}
