/** Finding, creating and checking the SQS queues behind a physical queue, with their URLs remembered. */
import { CreateQueueCommand, GetQueueAttributesCommand, GetQueueUrlCommand, type QueueAttributeName } from "@aws-sdk/client-sqs";
import { type BrokerEventMap, type Emitter, UnknownQueueError } from "@jobs/core/adapter";
import { brokerError, isMissingQueue, type SqsConnection } from "../connection.js";
import { type SqsQueueNames, sqsQueueNames } from "../names.js";
import type { SqsSettings } from "../options.js";

/** The URLs of a work queue and of its dead letters (undefined when that queue is missing). */
export interface QueueUrls {
  readonly url: string;
  readonly dead: string | undefined;
}

type QueueSettings = Pick<SqsSettings, "prefix" | "fifo" | "create" | "maxPayloadBytes" | "maxReceiveCount">;

/** The queues of one broker: names, URLs (looked up or created once per process) and the preflight check. */
export class Queues {
  readonly #urls = new Map<string, Promise<QueueUrls | undefined>>();

  constructor(
    private readonly connection: SqsConnection,
    private readonly settings: QueueSettings,
    private readonly events: Emitter<BrokerEventMap>,
  ) {}

  /** The SQS names of a physical queue; throws `InvalidOptionsError` for a bad name, before any request. */
  names(queue: string): SqsQueueNames {
    return sqsQueueNames(queue, { prefix: this.settings.prefix, fifo: this.settings.fifo });
  }

  /** The queue's URLs; creates the queues when allowed, `undefined` when missing and `create` is false. */
  resolve(queue: string, create: boolean): Promise<QueueUrls | undefined> {
    const names = this.names(queue);
    const cached = this.#urls.get(names.queue);
    if (cached !== undefined) return cached;
    const lookup = this.#lookup(queue, names, create && this.settings.create);
    // Only a found queue is remembered: a missing one may be created by someone else later.
    lookup.then(
      (urls) => urls === undefined && this.#urls.delete(names.queue),
      () => this.#urls.delete(names.queue),
    );
    this.#urls.set(names.queue, lookup);
    return lookup;
  }

  /** The queue's URLs, created when allowed; `UnknownQueueError` when it is missing. */
  async urlsOf(queue: string): Promise<QueueUrls> {
    const urls = await this.resolve(queue, true);
    if (urls === undefined) {
      throw new UnknownQueueError(queue, `[jobs] [sqs] queue "${queue}" (SQS queue "${this.names(queue).queue}") does not exist`);
    }
    return urls;
  }

  /** Forgets the queue at `url` (SQS said it does not exist): the next use looks it up again. */
  forget(url: string): void {
    for (const [name, urls] of this.#urls)
      void urls.then(
        (u) => u?.url === url && this.#urls.delete(name),
        () => {},
      );
  }

  async #url(name: string): Promise<string | undefined> {
    try {
      return (await this.connection.call((o) => this.connection.client.send(new GetQueueUrlCommand({ QueueName: name }), o))).QueueUrl;
    } catch (error) {
      if (isMissingQueue(error)) return undefined;
      throw error;
    }
  }

  async #lookup(queue: string, names: SqsQueueNames, create: boolean): Promise<QueueUrls | undefined> {
    const { connection, settings } = this;
    try {
      const url = await this.#url(names.queue);
      if (url !== undefined) {
        await this.#preflight(names.queue, url);
        return { url, dead: await this.#url(names.dead) };
      }
      if (!create) return undefined;
      const attributes: Record<string, string> = { MaximumMessageSize: String(settings.maxPayloadBytes) };
      if (settings.fifo) attributes.FifoQueue = "true";
      const createQueue = async (name: string, extra: Record<string, string>): Promise<string> => {
        const input = { QueueName: name, Attributes: { ...attributes, ...extra } };
        const out = await connection.call((o) => connection.client.send(new CreateQueueCommand(input), o));
        return out.QueueUrl as string;
      };
      const dead = await createQueue(names.dead, { MessageRetentionPeriod: "1209600" });
      const extra: Record<string, string> = {};
      if (settings.maxReceiveCount > 0) {
        const arn = await connection.call((o) =>
          connection.client.send(new GetQueueAttributesCommand({ QueueUrl: dead, AttributeNames: ["QueueArn"] }), o),
        );
        extra.RedrivePolicy = JSON.stringify({ deadLetterTargetArn: arn.Attributes?.QueueArn, maxReceiveCount: settings.maxReceiveCount });
      }
      return { url: await createQueue(names.queue, extra), dead };
    } catch (error) {
      throw brokerError("queue lookup", queue, error, connection.host);
    }
  }

  /** A queue made elsewhere may void a guarantee: say so once (`config-warning`), never refuse it. */
  async #preflight(name: string, url: string): Promise<void> {
    const AttributeNames: QueueAttributeName[] = ["MaximumMessageSize", "RedrivePolicy"];
    const out = await this.connection.call((o) =>
      this.connection.client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames }), o),
    );
    const a = out.Attributes ?? {};
    const limit = this.settings.maxPayloadBytes;
    const size = Number(a.MaximumMessageSize ?? limit);
    if (size < limit) {
      const message = `[jobs] [sqs] queue "${name}" takes messages up to ${size} bytes, below maxPayloadBytes (${limit}): larger jobs will be refused`;
      this.events.emit("config-warning", { code: "JOBS_SQS_MESSAGE_SIZE", message });
    }
    const receives = Number(
      (JSON.parse(a.RedrivePolicy ?? "{}") as { maxReceiveCount?: unknown }).maxReceiveCount ?? Number.POSITIVE_INFINITY,
    );
    if (receives <= 10) {
      const message = `[jobs] [sqs] queue "${name}" has a RedrivePolicy with maxReceiveCount ${receives}: SQS moves a message away, without its failure, before the worker's crash-loop bound (maxDeliveries, 10 by default) can`;
      this.events.emit("config-warning", { code: "JOBS_SQS_REDRIVE_POLICY", message });
    }
  }
}
