/** Publishing on the confirm channel: jobs, settlements' replacements, dead letters. */
import { randomUUID } from "node:crypto";
import {
  type BrokerCapabilities,
  brokerClosedError,
  brokerConnectionError,
  type DeadLetterRecord,
  EnqueueOutcomeUnknownError,
  type JobsError,
  type OutgoingMessage,
  type PublishOutcome,
  payloadTooLarge,
  redact,
  redactedMessage,
  UnknownQueueError,
} from "@jobs/core/adapter";
import type { ConfirmChannel, Options } from "amqplib";
import { declaredKey, type Link, type RabbitMQConnection, timed, wrap } from "./connection.js";
import { COUNT_HEADER, DEAD_HEADER } from "./internal/messages.js";
import { delayRoutingKey, ladderExchange, type QueueNames } from "./internal/topology.js";

const ACCEPTED: PublishOutcome = Object.freeze({ ok: true, duplicate: false });

/** The delay ladder's shape, what the instance accepts, and the objects of each queue. */
export interface RabbitMQPublisherOptions {
  readonly names: (queue: string) => QueueNames;
  readonly prefix: string;
  readonly levels: number;
  readonly unitMs: number;
  readonly capabilities: BrokerCapabilities;
}

/** Publishes on the confirm channel with `mandatory`: a job or replacement returned as unroutable (its queue deleted) is `UnknownQueueError`. */
export class RabbitMQPublisher {
  readonly #connection: RabbitMQConnection;
  readonly #names: (queue: string) => QueueNames;
  readonly #prefix: string;
  readonly #levels: number;
  readonly #unitMs: number;
  readonly #nativePriority: boolean;
  readonly #maxPayloadBytes: number;

  constructor(connection: RabbitMQConnection, options: RabbitMQPublisherOptions) {
    this.#connection = connection;
    this.#names = options.names;
    this.#prefix = options.prefix;
    this.#levels = options.levels;
    this.#unitMs = options.unitMs;
    this.#nativePriority = options.capabilities.priority === "native";
    this.#maxPayloadBytes = options.capabilities.maxPayloadBytes;
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<PublishOutcome[]> {
    const connection = this.#connection;
    if (connection.closed) throw brokerClosedError("rabbitmq");
    const names = this.#names(queue);
    let link: Link;
    let ch: ConfirmChannel;
    try {
      link = connection.link ?? (await connection.ready());
      const delays = messages.some((m) => m.delayMs > 0);
      if (!link.ready.has(declaredKey(names, delays))) await connection.declare(link, names, delays);
      ch = link.pubChannel ?? ((await connection.channel(link, "pub")) as ConfirmChannel);
    } catch (error) {
      throw wrap(error);
    }
    const outcomes: PublishOutcome[] = new Array(messages.length);
    let remaining = messages.length;
    if (remaining === 0) return outcomes;
    const timeoutMs = connection.requestTimeoutMs;
    return new Promise((resolve) => {
      const settle = (i: number, outcome: PublishOutcome): void => {
        if (outcomes[i] !== undefined) return;
        outcomes[i] = outcome;
        if (--remaining === 0) {
          clearTimeout(timer);
          resolve(outcomes);
        }
      };
      const timer = setTimeout(() => {
        const error = new EnqueueOutcomeUnknownError(`[jobs] [rabbitmq] no confirm from RabbitMQ within ${timeoutMs} ms`);
        for (let i = 0; i < messages.length; i++) settle(i, { ok: false, error });
      }, timeoutMs);
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i] as OutgoingMessage;
        const tooLarge = payloadTooLarge(m.body, this.#maxPayloadBytes);
        if (tooLarge !== undefined) {
          settle(i, { ok: false, error: tooLarge });
          continue;
        }
        this.#emit(link, ch, names, m.body, m.priority, m.delayMs, undefined, (error) =>
          settle(i, error === undefined ? ACCEPTED : { ok: false, error }),
        );
      }
    });
  }

  /** Publishes one message on the confirm channel; `done` gets the verdict (never called twice). */
  #emit(
    link: Link,
    ch: ConfirmChannel,
    names: QueueNames,
    body: string,
    priority: number,
    delayMs: number,
    count: number | undefined,
    done: (error: JobsError | undefined) => void,
  ): void {
    const correlationId = String(++link.seq);
    const units = delayMs > 0 ? Math.min(Math.ceil(delayMs / this.#unitMs), 2 ** this.#levels - 1) : 0;
    const options: Options.Publish = { persistent: true, mandatory: true, correlationId };
    if (priority > 0 && this.#nativePriority) options.priority = priority;
    if (count !== undefined) options.headers = { [COUNT_HEADER]: count };
    const callback = (err: unknown): void => {
      if (link.returned.delete(correlationId)) {
        // Deleted behind our back: declared again on the next publish (unless declaring is off).
        this.#connection.forget(link, names);
        done(new UnknownQueueError(names.queue, `[jobs] [rabbitmq] queue "${names.work}" does not exist (message returned as unroutable)`));
      } else if (err === null || err === undefined) done(undefined);
      else done(new EnqueueOutcomeUnknownError(`[jobs] [rabbitmq] publish not confirmed: ${redactedMessage(err)}`));
    };
    try {
      if (units === 0) ch.publish("", names.work, Buffer.from(body, "utf8"), options, callback);
      else
        ch.publish(
          ladderExchange(this.#prefix, this.#levels - 1),
          delayRoutingKey(units, this.#levels, names.queue),
          Buffer.from(body, "utf8"),
          options,
          callback,
        );
    } catch (error) {
      // Nothing left the process: amqplib refuses to write on a closed channel.
      done(brokerConnectionError("rabbitmq", "cannot publish", error));
    }
  }

  async #channel(names: QueueNames, delays: boolean): Promise<[Link, ConfirmChannel]> {
    const connection = this.#connection;
    try {
      const link = connection.link ?? (await connection.ready());
      if (!link.ready.has(declaredKey(names, delays))) await connection.declare(link, names, delays);
      return [link, link.pubChannel ?? ((await connection.channel(link, "pub")) as ConfirmChannel)];
    } catch (error) {
      throw wrap(error);
    }
  }

  /** Publishes one message (confirmed) for a settlement. */
  async send(names: QueueNames, body: string, priority: number, delayMs: number, count: number | undefined): Promise<void> {
    const [link, ch] = await this.#channel(names, delayMs > 0);
    const timeoutMs = this.#connection.requestTimeoutMs;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new EnqueueOutcomeUnknownError(`[jobs] [rabbitmq] no confirm within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#emit(link, ch, names, body, priority, delayMs, count, (error) => {
        clearTimeout(timer);
        if (error === undefined) resolve();
        else reject(error);
      });
    });
  }

  /** Stores a dead letter (confirmed). */
  async sendDead(names: QueueNames, record: DeadLetterRecord): Promise<void> {
    const [, ch] = await this.#channel(names, false);
    const meta = JSON.stringify({ reason: record.reason, error: record.error, failedAt: record.failedAt });
    await timed(
      new Promise<void>((resolve, reject) => {
        ch.publish(
          "",
          names.dead,
          Buffer.from(record.body, "utf8"),
          { persistent: true, mandatory: true, messageId: randomUUID(), headers: { [DEAD_HEADER]: meta } },
          (err: unknown) =>
            err === null || err === undefined
              ? resolve()
              : reject(new EnqueueOutcomeUnknownError(`[jobs] [rabbitmq] dead letter not confirmed: ${redact(String(err))}`)),
        );
      }),
      this.#connection.requestTimeoutMs,
      "store a dead letter",
    );
  }
}
