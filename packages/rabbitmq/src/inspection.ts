/** Counts, dead letters, purge and queue removal, on the admin channel. */
import { brokerClosedError, type DeadLetter, type QueueCounts, UnknownQueueError } from "@jobs/core/adapter";
import type { Channel, ConsumeMessage } from "amqplib";
import { type RabbitMQConnection, timed, wrap } from "./connection.js";
import { toDeadLetter } from "./internal/messages.js";
import type { QueueNames } from "./internal/topology.js";

/** Inspection and removal through the admin channel, with the queue's objects declared first (except for removal). */
export class RabbitMQInspection {
  readonly #connection: RabbitMQConnection;
  readonly #names: (queue: string) => QueueNames;
  /** Unsettled deliveries this instance holds from the queue (AMQP counts ready messages only). */
  readonly #active: (names: QueueNames) => number;

  constructor(connection: RabbitMQConnection, names: (queue: string) => QueueNames, active: (names: QueueNames) => number) {
    this.#connection = connection;
    this.#names = names;
    this.#active = active;
  }

  async #admin<T>(queue: string, fn: (ch: Channel, names: QueueNames) => Promise<T>, declare = true): Promise<T> {
    const connection = this.#connection;
    if (connection.closed) throw brokerClosedError("rabbitmq");
    const names = this.#names(queue);
    try {
      const link = await connection.ready();
      if (declare) await connection.declare(link, names, true);
      return await timed(fn(await connection.channel(link, "admin"), names), connection.requestTimeoutMs, "inspect a queue");
    } catch (error) {
      if ((error as { code?: unknown })?.code === 404) {
        throw new UnknownQueueError(queue, `[jobs] [rabbitmq] queue "${names.work}" (or one of its delay or dead queues) does not exist`);
      }
      throw wrap(error);
    }
  }

  counts(queue: string): Promise<QueueCounts> {
    return this.#admin(queue, async (ch, names) => {
      const waiting = (await ch.checkQueue(names.work)).messageCount;
      const dead = (await ch.checkQueue(names.dead)).messageCount;
      let delayed = 0;
      for (const d of names.delays) delayed += (await ch.checkQueue(d)).messageCount;
      // AMQP reports ready messages only: unsettled deliveries are known for this instance's consumers.
      const active = this.#active(names);
      return { waiting, delayed, active, dead };
    });
  }

  /** Reads the dead letters on a private channel without acking them; closing it puts them back in order. */
  #browseDead<T>(queue: string, fn: (ch: Channel, letters: { msg: ConsumeMessage; letter: DeadLetter }[]) => T): Promise<T> {
    return this.#admin(queue, async (_admin, names) => {
      const link = await this.#connection.ready();
      const ch = await link.model.createChannel();
      ch.on("error", () => {});
      try {
        const letters: { msg: ConsumeMessage; letter: DeadLetter }[] = [];
        for (;;) {
          const msg = await ch.get(names.dead, { noAck: false });
          if (msg === false) break;
          letters.push({ msg: msg as unknown as ConsumeMessage, letter: toDeadLetter(msg as unknown as ConsumeMessage) });
        }
        return fn(ch, letters);
      } finally {
        await ch.close().catch(() => {});
      }
    });
  }

  listDeadLetters(queue: string, options: { readonly limit: number; readonly offset?: number }): Promise<DeadLetter[]> {
    const offset = options.offset ?? 0;
    return this.#browseDead(queue, (_ch, letters) => letters.slice(offset, offset + options.limit).map((l) => l.letter));
  }

  removeDeadLetters(queue: string, keys: readonly string[]): Promise<number> {
    const remove = new Set(keys);
    return this.#browseDead(queue, (ch, letters) => {
      let removed = 0;
      for (const { msg, letter } of letters) {
        if (!remove.has(letter.key)) continue;
        ch.ack(msg);
        removed++;
      }
      return removed;
    });
  }

  purge(queue: string): Promise<void> {
    return this.#admin(queue, async (ch, names) => {
      for (const q of [...names.delays, names.work, names.dead]) await ch.purgeQueue(q);
    });
  }

  /** Deletes the queue's work, dead and delay queues, messages included. */
  deleteQueue(queue: string): Promise<void> {
    return this.#admin(
      queue,
      async (ch, names) => {
        for (const q of [names.work, names.dead, ...names.delays]) await ch.deleteQueue(q);
        this.#connection.forget(this.#connection.link, names);
      },
      false,
    );
  }
}
