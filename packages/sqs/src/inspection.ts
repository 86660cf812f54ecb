/** counts, listDeadLetters, removeDeadLetters and purge on SQS. */
import { GetQueueAttributesCommand, PurgeQueueCommand, type QueueAttributeName, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import type { DeadLetter, QueueCounts } from "@jobs/core/adapter";
import { brokerError, isPurgeInProgress, RECEIVE_ATTRIBUTES, type SqsConnection } from "./connection.js";
import type { Batches } from "./internal/batches.js";
import { deadLetterOf } from "./internal/dead-letters.js";
import type { Queues } from "./internal/queues.js";
import type { SqsSettings } from "./options.js";

type InspectionSettings = Pick<SqsSettings, "countsIncludeInFlight" | "maxReceiveCount">;

/** What a queue holds, its dead letters, and emptying it. */
export class SqsInspection {
  constructor(
    private readonly connection: SqsConnection,
    private readonly queues: Queues,
    private readonly batches: Batches,
    private readonly settings: InspectionSettings,
  ) {}

  async counts(queue: string): Promise<QueueCounts> {
    this.connection.ensureOpen();
    this.queues.names(queue);
    try {
      const urls = await this.queues.resolve(queue, false);
      if (urls === undefined) return { waiting: 0, delayed: 0, active: 0, dead: 0 };
      const [main, dead] = await Promise.all([this.#attributes(urls.url), urls.dead === undefined ? {} : this.#attributes(urls.dead)]);
      const n = (a: Record<string, string>, key: string): number => Number(a[key] ?? 0);
      const inFlight = n(main, "ApproximateNumberOfMessagesNotVisible");
      const ready = n(main, "ApproximateNumberOfMessages") - (this.settings.countsIncludeInFlight ? inFlight : 0);
      const deadInFlight = this.settings.countsIncludeInFlight ? 0 : n(dead, "ApproximateNumberOfMessagesNotVisible");
      return {
        waiting: Math.max(0, ready),
        delayed: n(main, "ApproximateNumberOfMessagesDelayed"),
        active: inFlight,
        dead: n(dead, "ApproximateNumberOfMessages") + deadInFlight + n(dead, "ApproximateNumberOfMessagesDelayed"),
      };
    } catch (error) {
      throw brokerError("counts", queue, error);
    }
  }

  async listDeadLetters(queue: string, options: { readonly limit: number; readonly offset?: number }): Promise<DeadLetter[]> {
    const offset = options.offset ?? 0;
    return (await this.#scanDead(queue, () => false)).kept.slice(offset, offset + options.limit);
  }

  async removeDeadLetters(queue: string, keys: readonly string[]): Promise<number> {
    const remove = new Set(keys);
    if (remove.size === 0) return 0;
    return (await this.#scanDead(queue, (key) => remove.has(key))).removed;
  }

  /**
   * PurgeQueue on the queue and its dead letters (SQS applies it within 60 s, delayed messages and
   * deliveries in flight included), then receives and deletes what is visible now, so that
   * waiting and dead counts drop at once (bounded: up to 1,000 messages per queue).
   */
  async purge(queue: string): Promise<void> {
    this.connection.ensureOpen();
    const urls = await this.queues.resolve(queue, false);
    if (urls === undefined) return;
    const { connection } = this;
    try {
      for (const url of [urls.url, urls.dead]) {
        if (url === undefined) continue;
        await connection
          .call((o) => connection.client.send(new PurgeQueueCommand({ QueueUrl: url }), o))
          .catch((error: unknown) => {
            // One PurgeQueue per queue per 60 s: the running one still applies; the drain below covers the rest.
            if (!isPurgeInProgress(error)) throw error;
          });
        const { remove } = this.batches.of(url, queue);
        for (let i = 0; i < 100; i++) {
          const input = { QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 60 };
          const batch = (await connection.call((o) => connection.client.send(new ReceiveMessageCommand(input), o))).Messages ?? [];
          if (batch.length === 0) break;
          await Promise.all(batch.map((m) => remove.add(m.ReceiptHandle as string)));
        }
      }
    } catch (error) {
      throw brokerError("purge", queue, error);
    }
  }

  async #attributes(url: string): Promise<Record<string, string>> {
    const AttributeNames: QueueAttributeName[] = [
      "ApproximateNumberOfMessages",
      "ApproximateNumberOfMessagesNotVisible",
      "ApproximateNumberOfMessagesDelayed",
    ];
    const { connection } = this;
    const out = await connection.call((o) => connection.client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames }), o));
    return out.Attributes ?? {};
  }

  /**
   * Receives every message of the dead-letter queue (hidden while this runs), deletes those
   * `remove` picks and makes the others visible again. Listing and removing therefore
   * see one snapshot; two inspections at once each see only part of the queue.
   */
  async #scanDead(queue: string, remove: (key: string) => boolean): Promise<{ kept: DeadLetter[]; removed: number }> {
    this.connection.ensureOpen();
    const urls = await this.queues.resolve(queue, false);
    if (urls?.dead === undefined) return { kept: [], removed: 0 };
    const dead = urls.dead;
    const { remove: del, visibility } = this.batches.of(dead, queue);
    const { connection } = this;
    const seen = new Map<string, { letter: DeadLetter; handle: string; sent: number }>();
    try {
      for (;;) {
        const input = {
          QueueUrl: dead,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
          VisibilityTimeout: 60,
          AttributeNames: RECEIVE_ATTRIBUTES,
          MessageSystemAttributeNames: ["SentTimestamp" as const],
          MessageAttributeNames: ["All"],
        };
        const out = await connection.call((o) => connection.client.send(new ReceiveMessageCommand(input), o));
        const batch = out.Messages ?? [];
        if (batch.length === 0) break;
        for (const m of batch) {
          const key = m.MessageId as string;
          seen.set(key, {
            letter: deadLetterOf(m, key, this.settings.maxReceiveCount),
            handle: m.ReceiptHandle as string,
            sent: Number(m.Attributes?.SentTimestamp ?? 0),
          });
        }
      }
      let removed = 0;
      const kept: { letter: DeadLetter; sent: number }[] = [];
      await Promise.all(
        [...seen.values()].map(async (s) => {
          if (remove(s.letter.key)) {
            await del.add(s.handle);
            removed++;
          } else {
            kept.push(s);
            await visibility.add({ handle: s.handle, seconds: 0 });
          }
        }),
      );
      kept.sort((a, b) => a.letter.failedAt - b.letter.failedAt || a.sent - b.sent);
      return { kept: kept.map((k) => k.letter), removed };
    } catch (error) {
      throw brokerError("dead-letter inspection", queue, error);
    }
  }
}
