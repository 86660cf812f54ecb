/** The batch requests of each SQS queue URL: SendMessageBatch, DeleteMessageBatch, ChangeMessageVisibilityBatch. */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type MessageAttributeValue,
  SendMessageBatchCommand,
  type SendMessageBatchCommandOutput,
} from "@aws-sdk/client-sqs";
import { EnqueueOutcomeUnknownError, InvalidOptionsError, type JobsError } from "@jobs/core/adapter";
import { brokerError, isMissingQueue, publishError, type SqsConnection } from "../connection.js";
import { Batcher, type Pending } from "./batcher.js";

const MAX_BATCH_BYTES = 1_048_576;

/** One message to send. */
export interface SendEntry {
  readonly id: string;
  readonly body: string;
  readonly delaySeconds: number;
  readonly dedupeId: string | undefined;
  readonly groupId: string | undefined;
  readonly attributes?: Record<string, MessageAttributeValue>;
}

/** A send's outcome: SQS's message id (on FIFO, a deduplicated send gets the first message's id), or why it failed. */
export type SendResult = { readonly ok: true; readonly messageId: string | undefined } | { readonly ok: false; readonly error: JobsError };

/** One visibility change. */
export interface Visibility {
  readonly handle: string;
  readonly seconds: number;
}

/** The batchers of one SQS queue URL. */
export interface UrlBatchers {
  readonly send: Batcher<SendEntry, SendResult>;
  /** Deletes by receipt handle. */
  readonly remove: Batcher<string, void>;
  readonly visibility: Batcher<Visibility, void>;
}

/** The batchers of every queue URL a broker used. */
export class Batches {
  readonly #batchers = new Map<string, UrlBatchers>();

  constructor(
    private readonly connection: SqsConnection,
    /** Called when SQS says the queue at a URL does not exist. */
    private readonly forget: (url: string) => void,
    private readonly lingerMs: number,
  ) {}

  /** The batchers of `url`, the SQS queue of physical queue `queue` (named in errors). */
  of(url: string, queue: string): UrlBatchers {
    let b = this.#batchers.get(url);
    if (b === undefined) {
      b = {
        send: new Batcher((items) => this.#send(url, queue, items), 0, MAX_BATCH_BYTES),
        remove: new Batcher((items) => this.#remove(url, queue, items), this.lingerMs, Number.POSITIVE_INFINITY),
        visibility: new Batcher((items) => this.#visibility(url, queue, items), this.lingerMs, Number.POSITIVE_INFINITY),
      };
      this.#batchers.set(url, b);
    }
    return b;
  }

  /** Sends every pending batch and waits for the requests in flight. */
  async drain(): Promise<void> {
    await Promise.all([...this.#batchers.values()].flatMap((b) => [b.send.drain(), b.remove.drain(), b.visibility.drain()]));
  }

  async #send(url: string, queue: string, items: readonly Pending<SendEntry, SendResult>[]): Promise<void> {
    const Entries = items.map(({ entry }, i) => ({
      Id: String(i),
      MessageBody: entry.body,
      ...(entry.delaySeconds > 0 ? { DelaySeconds: entry.delaySeconds } : {}),
      ...(entry.groupId === undefined ? {} : { MessageGroupId: entry.groupId }),
      ...(entry.dedupeId === undefined ? {} : { MessageDeduplicationId: entry.dedupeId }),
      ...(entry.attributes === undefined ? {} : { MessageAttributes: entry.attributes }),
    }));
    let out: SendMessageBatchCommandOutput;
    try {
      out = await this.connection.call((o) =>
        this.connection.publishClient.send(new SendMessageBatchCommand({ QueueUrl: url, Entries }), o),
      );
    } catch (error) {
      if (isMissingQueue(error)) this.forget(url);
      const failure = publishError(queue, error);
      for (const item of items) item.resolve({ ok: false, error: failure });
      return;
    }
    const done = new Set<number>();
    for (const s of out.Successful ?? []) {
      const index = Number(s.Id);
      const item = items[index];
      if (item === undefined || done.has(index)) continue;
      done.add(index);
      item.resolve({ ok: true, messageId: s.MessageId });
    }
    for (const f of out.Failed ?? []) {
      const index = Number(f.Id);
      const item = items[index];
      if (item === undefined || done.has(index)) continue;
      done.add(index);
      const error: JobsError = f.SenderFault
        ? new InvalidOptionsError("message", `[sqs] SQS refused the message: ${f.Code ?? ""} ${f.Message ?? ""}`.trim())
        : brokerError("publish", queue, { name: f.Code, message: f.Message, $metadata: { httpStatusCode: 500 } });
      item.resolve({ ok: false, error });
    }
    for (const [i, item] of items.entries()) {
      if (!done.has(i))
        item.resolve({ ok: false, error: new EnqueueOutcomeUnknownError(`[jobs] [sqs] no result for a message sent to "${queue}"`) });
    }
  }

  async #remove(url: string, queue: string, items: readonly Pending<string, void>[]): Promise<void> {
    const Entries = items.map(({ entry }, i) => ({ Id: String(i), ReceiptHandle: entry }));
    const out = await this.connection
      .call((o) => this.connection.client.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries }), o))
      .catch((error: unknown) => {
        throw brokerError("delete", queue, error);
      });
    settleEntries(items, out.Failed, (code) => brokerError("delete", queue, { name: code }));
  }

  async #visibility(url: string, queue: string, items: readonly Pending<Visibility, void>[]): Promise<void> {
    const Entries = items.map(({ entry }, i) => ({ Id: String(i), ReceiptHandle: entry.handle, VisibilityTimeout: entry.seconds }));
    const input = { QueueUrl: url, Entries };
    const out = await this.connection
      .call((o) => this.connection.client.send(new ChangeMessageVisibilityBatchCommand(input), o))
      .catch((error: unknown) => {
        throw brokerError("change visibility", queue, error);
      });
    settleEntries(items, out.Failed, (code) => brokerError("change visibility", queue, { name: code }));
  }
}

/** Resolves each entry of a delete or visibility batch, or rejects it with its entry's failure. */
function settleEntries<E>(
  items: readonly Pending<E, void>[],
  failed: readonly { Id?: string | undefined; Code?: string | undefined }[] | undefined,
  toError: (code: string) => JobsError,
): void {
  const failures = new Map((failed ?? []).map((f) => [Number(f.Id), f.Code ?? "Error"]));
  for (const [i, item] of items.entries()) {
    const code = failures.get(i);
    if (code === undefined) item.resolve();
    else item.reject(toError(code));
  }
}
