/** publish(): messages to SendMessageBatch entries, one outcome per message. */
import { randomUUID } from "node:crypto";
import {
  InvalidOptionsError,
  type JobsError,
  type OutgoingMessage,
  type PublishOutcome,
  payloadTooLarge,
  UnsupportedError,
} from "@jobs/core/adapter";
import type { SqsConnection } from "./connection.js";
import type { Batches, SendEntry } from "./internal/batches.js";
import type { Queues } from "./internal/queues.js";
import type { SqsSettings } from "./options.js";

type PublishSettings = Pick<SqsSettings, "fifo" | "groupId" | "maxPayloadBytes">;

/** Publishes messages through the per-queue send batchers. */
export class SqsPublisher {
  /** FIFO: the ids this instance sent, to tell a deduplicated send (see `#duplicate`). */
  readonly #sent = new Map<string, { readonly messageId: string; readonly until: number }>();

  constructor(
    private readonly connection: SqsConnection,
    private readonly queues: Queues,
    private readonly batches: Batches,
    private readonly settings: PublishSettings,
    private readonly dedupeWindowMs: number,
  ) {}

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<PublishOutcome[]> {
    this.connection.ensureOpen();
    if (!Array.isArray(messages)) throw new InvalidOptionsError("messages", "expected an array");
    this.queues.names(queue);
    let url: string;
    try {
      url = (await this.queues.urlsOf(queue)).url;
    } catch (error) {
      return messages.map(() => ({ ok: false, error: error as JobsError }));
    }
    const { send } = this.batches.of(url, queue);
    return Promise.all(
      messages.map((m): PublishOutcome | Promise<PublishOutcome> => {
        const tooLarge = payloadTooLarge(m.body, this.settings.maxPayloadBytes);
        if (tooLarge !== undefined) return { ok: false, error: tooLarge };
        if (this.settings.fifo && m.delayMs > 0) {
          return {
            ok: false,
            error: new UnsupportedError(`[jobs] [sqs] FIFO queues cannot delay a single message (delay ${m.delayMs} ms)`),
          };
        }
        const entry = this.entry(queue, m);
        return send
          .add(entry, Buffer.byteLength(m.body, "utf8"))
          .then((result) => (result.ok ? { ok: true, duplicate: this.#duplicate(url, entry, result.messageId) } : result));
      }),
    );
  }

  /** The SendMessageBatch entry of a message (also for the new message of a retry or deferral). */
  entry(queue: string, m: OutgoingMessage): SendEntry {
    const fifo = this.settings.fifo;
    return {
      id: m.id,
      body: m.body,
      // Not clamped: core never asks for more than maxDelayMs, and SQS refuses the one entry that does.
      delaySeconds: Math.ceil(m.delayMs / 1000),
      dedupeId: fifo ? (m.dedupe ? m.id : randomUUID()) : undefined,
      groupId: fifo ? this.settings.groupId(queue, m) : undefined,
    };
  }

  /** FIFO: SQS answers a deduplicated send with the first message's id; this instance remembers the ids it sent. */
  #duplicate(url: string, entry: SendEntry, messageId: string | undefined): boolean {
    if (entry.dedupeId === undefined || messageId === undefined || entry.dedupeId !== entry.id) return false;
    const now = Date.now();
    const key = `${url} ${entry.id}`;
    const seen = this.#sent.get(key);
    if (seen !== undefined && seen.until > now && seen.messageId === messageId) return true;
    if (this.#sent.size > 10_000) for (const [k, v] of this.#sent) if (v.until <= now) this.#sent.delete(k);
    this.#sent.set(key, { messageId, until: now + this.dedupeWindowMs });
    return false;
  }
}
