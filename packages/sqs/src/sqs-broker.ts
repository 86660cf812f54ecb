import { randomUUID } from "node:crypto";
import { Agent } from "node:http";
import {
  ChangeMessageVisibilityBatchCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  type Message,
  type MessageAttributeValue,
  PurgeQueueCommand,
  type QueueAttributeName,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SendMessageBatchCommandOutput,
  SQSClient,
  type SQSClientConfig,
} from "@aws-sdk/client-sqs";
import {
  type Broker,
  BrokerClosedError,
  type Duration,
  EnqueueOutcomeUnknownError,
  InvalidOptionsError,
  type JobsError,
  PayloadTooLargeError,
  type QueueCounts,
  UnknownQueueError,
  UnsupportedError,
} from "@jobs/core";
import {
  type BrokerCapabilities,
  type BrokerEventMap,
  type ConsumeOptions,
  type DeadLetter,
  type DeadLetterRecord,
  type Delivery,
  Emitter,
  isLoopbackHost,
  LeaseLostError,
  type OutgoingMessage,
  type PublishOutcome,
  parseDuration,
  type Subscription,
} from "@jobs/core/adapter";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { Batcher, type Pending } from "./internal/batcher.js";
import { Consumer, type Leased } from "./internal/consumer.js";
import { deadLetterAttributes, deadLetterOf } from "./internal/dead-letters.js";
import { brokerError, isMissingQueue, publishError, RequestTimeout, responded, serialized } from "./internal/errors.js";
import { assertPrefix, type SqsQueueNames, sqsQueueNames } from "./internal/names.js";

/** What SQS does natively (standard queues; a FIFO instance narrows delays and adds dedupe). */
export const sqsCapabilities: BrokerCapabilities = {
  priority: "none",
  maxDelayMs: 900_000,
  maxPayloadBytes: 1_048_576,
  dedupeWindowMs: 0,
  leaseExtension: true,
  durable: true,
  redeliverOnClose: false,
  timerResolutionMs: 1_000,
  exactPurge: false,
};

/** Options of `createSqsBroker`. */
export interface SqsBrokerOptions {
  /**
   * An existing client to use (never destroyed by the broker); request timeouts still apply per call.
   * Its SDK retries apply to publishes too: give it `maxAttempts: 1`, or a retried send whose first
   * response was lost stores the job twice on a standard queue. @default a client built from the options below
   */
  readonly client?: SQSClient;
  /** Endpoint URL of SQS or a compatible service (LocalStack, ElasticMQ, an emulator). @default the AWS endpoint of the region */
  readonly endpoint?: string;
  /** AWS region. @default the SDK's (AWS_REGION, profile), or "us-east-1" when `endpoint` is given */
  readonly region?: string;
  /** More configuration of the client the broker builds (credentials, retries, …); ignored with `client`. @default {} */
  readonly clientConfig?: SQSClientConfig;
  /** Prefix of every SQS queue name (up to 40 of `[A-Za-z0-9_-]`). @default "jobs-" */
  readonly prefix?: string;
  /** `"create"`: create missing queues on first use; `"verify"`: only look them up, a missing one is an `UnknownQueueError`. @default "create" */
  readonly queues?: "create" | "verify";
  /** FIFO queues: enqueue dedupe by job id within 5 minutes, but no per-message delay. @default false */
  readonly fifo?: boolean;
  /** FIFO message group of a message: messages of one group run one at a time, in order. @default the job id (no ordering, full parallelism) */
  readonly messageGroupId?: (queue: string, message: OutgoingMessage) => string;
  /** Largest body in bytes; queues are created with this `MaximumMessageSize` (1024–1048576). @default 1048576 */
  readonly maxPayloadBytes?: number;
  /** Long-poll wait of each receive, in seconds (1–20): the idle cost is one request per wait per queue. @default 20 */
  readonly waitTimeSeconds?: number;
  /** Most receive requests in flight per consumer under a backlog (one when idle). @default ceil(prefetch / 10), at most 10 */
  readonly maxReceiveLoops?: number;
  /** How long deletes and visibility changes wait to fill a batch of 10. @default 5 */
  readonly batchLinger?: Duration;
  /** Any request (a receive: beyond its wait) fails after this long; a publish then has an unknown outcome. @default "10s" */
  readonly requestTimeout?: Duration;
  /** `maxReceiveCount` of the RedrivePolicy of created queues: a backstop for crash loops, above core's `maxDeliveries`. @default 50 */
  readonly maxReceiveCount?: number;
  /** Read `ApproximateNumberOfMessages` as including in-flight messages, as local-aws-sqs reports it (SQS does not). @default false */
  readonly countsIncludeInFlight?: boolean;
}

const MAX_BATCH_BYTES = 1_048_576;
// The deprecated `AttributeNames` is the only spelling local-aws-sqs reads; "All" is valid there and on SQS.
const RECEIVE_ATTRIBUTES: QueueAttributeName[] = ["All"];

interface SendEntry {
  readonly id: string;
  readonly body: string;
  readonly delaySeconds: number;
  readonly dedupeId: string | undefined;
  readonly groupId: string | undefined;
  readonly attributes?: Record<string, MessageAttributeValue>;
}

interface Visibility {
  readonly handle: string;
  readonly seconds: number;
}

interface QueueUrls {
  readonly url: string;
  readonly dead: string | undefined;
}

/** Batchers of one SQS queue URL. */
interface UrlBatchers {
  readonly send: Batcher<SendEntry, PublishOutcome>;
  readonly remove: Batcher<string, void>;
  readonly visibility: Batcher<Visibility, void>;
}

class SqsDelivery implements Delivery, Leased {
  settled = false;
  constructor(
    private readonly broker: SqsBroker,
    readonly consumer: Consumer<SqsDelivery>,
    readonly handle: string,
    readonly body: string,
    readonly deliveryCount: number,
    public deadline: number,
  ) {}

  /** Takes the delivery out of the consumer's hands, or says why it cannot be settled. */
  begin(): void {
    if (this.broker.closed) throw new BrokerClosedError("[jobs] [sqs] broker is closed; the delivery went back to its queue");
    if (this.settled || Date.now() >= this.deadline) {
      this.consumer.release(this);
      throw new LeaseLostError();
    }
    this.settled = true;
    this.consumer.release(this);
  }

  ack(): Promise<void> {
    return this.broker.settle(this, () => this.broker.remove(this));
  }

  retry(next: OutgoingMessage): Promise<void> {
    return this.broker.settle(this, () => this.broker.replace(this, next.body, next.delayMs, next.id));
  }

  defer(delayMs: number): Promise<void> {
    if (this.broker.fifo) {
      return this.broker.settle(this, () => this.broker.changeVisibility(this, Math.ceil(delayMs / 1000)));
    }
    return this.broker.settle(this, () => this.broker.replace(this, this.body, delayMs, randomUUID()));
  }

  deadLetter(record: DeadLetterRecord): Promise<void> {
    return this.broker.settle(this, () => this.broker.bury(this, record));
  }

  async extendLease(ms: number): Promise<void> {
    if (this.broker.closed) throw new BrokerClosedError();
    if (this.settled || Date.now() >= this.deadline) throw new LeaseLostError();
    const seconds = Math.min(43_200, Math.ceil(ms / 1000));
    const sentAt = Date.now();
    await this.broker.changeVisibility(this, seconds);
    // SQS counts the new timeout from now, even when it ends sooner than the old one.
    this.deadline = sentAt + seconds * 1000;
  }
}

/** The Broker contract on Amazon SQS (or a compatible service). */
class SqsBroker implements Broker {
  readonly name: string = "sqs";
  readonly capabilities: BrokerCapabilities;
  readonly events: Emitter<BrokerEventMap> = new Emitter<BrokerEventMap>();
  readonly on: Broker["on"] = this.events.on;
  readonly fifo: boolean;
  closed = false;
  readonly #client: SQSClient;
  /**
   * Sends publishes: the same connections, no SDK retry. A retried SendMessageBatch whose first
   * response was lost (connection reset) stores the jobs twice on a standard queue; without the
   * retry the enqueue rejects as ambiguous, which the caller can see (RELIABILITY.md anchor 6).
   */
  readonly #publishClient: SQSClient;
  readonly #ownsClient: boolean;
  readonly #prefix: string;
  readonly #create: boolean;
  readonly #waitSeconds: number;
  readonly #timeoutMs: number;
  readonly #lingerMs: number;
  readonly #maxLoops: number | undefined;
  readonly #maxReceiveCount: number;
  readonly #countsIncludeInFlight: boolean;
  readonly #groupId: (queue: string, message: OutgoingMessage) => string;
  readonly #urls = new Map<string, Promise<QueueUrls | undefined>>();
  readonly #batchers = new Map<string, UrlBatchers>();
  readonly #consumers = new Set<Consumer<SqsDelivery>>();
  readonly #sent = new Map<string, { readonly messageId: string; readonly until: number }>();
  #down = false;
  #closing: Promise<void> | undefined;

  constructor(options: SqsBrokerOptions) {
    if (typeof options !== "object" || options === null) throw new InvalidOptionsError("options", "expected an options object");
    this.#prefix = options.prefix ?? "jobs-";
    assertPrefix(this.#prefix);
    const mode = options.queues ?? "create";
    if (mode !== "create" && mode !== "verify") throw new InvalidOptionsError("queues", 'expected "create" or "verify"');
    this.#create = mode === "create";
    this.fifo = options.fifo ?? false;
    if (typeof this.fifo !== "boolean") throw new InvalidOptionsError("fifo", "expected a boolean");
    const maxPayloadBytes = options.maxPayloadBytes ?? sqsCapabilities.maxPayloadBytes;
    if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 1024 || maxPayloadBytes > 1_048_576) {
      throw new InvalidOptionsError("maxPayloadBytes", `expected an integer from 1024 to 1048576, got ${String(maxPayloadBytes)}`);
    }
    this.#waitSeconds = options.waitTimeSeconds ?? 20;
    if (!Number.isInteger(this.#waitSeconds) || this.#waitSeconds < 1 || this.#waitSeconds > 20) {
      throw new InvalidOptionsError("waitTimeSeconds", `expected an integer from 1 to 20, got ${String(this.#waitSeconds)}`);
    }
    this.#maxLoops = options.maxReceiveLoops;
    if (this.#maxLoops !== undefined && !(Number.isInteger(this.#maxLoops) && this.#maxLoops >= 1)) {
      throw new InvalidOptionsError("maxReceiveLoops", "expected a positive integer");
    }
    this.#lingerMs = parseDuration(options.batchLinger ?? 5, "batchLinger");
    this.#timeoutMs = parseDuration(options.requestTimeout ?? "10s", "requestTimeout");
    if (this.#timeoutMs < 100) throw new InvalidOptionsError("requestTimeout", "expected at least 100 ms");
    this.#maxReceiveCount = options.maxReceiveCount ?? 50;
    if (!Number.isInteger(this.#maxReceiveCount) || this.#maxReceiveCount < 0 || this.#maxReceiveCount > 1000) {
      throw new InvalidOptionsError("maxReceiveCount", "expected an integer from 0 (no redrive policy) to 1000");
    }
    this.#countsIncludeInFlight = options.countsIncludeInFlight ?? false;
    this.#groupId = options.messageGroupId ?? ((_queue, message) => message.id);
    if (typeof this.#groupId !== "function") throw new InvalidOptionsError("messageGroupId", "expected a function");
    this.capabilities = {
      ...sqsCapabilities,
      maxPayloadBytes,
      dedupeWindowMs: this.fifo ? 300_000 : 0,
    };
    if (options.client !== undefined) {
      if (!(options.client instanceof SQSClient)) throw new InvalidOptionsError("client", "expected an SQSClient");
      for (const field of ["endpoint", "region", "clientConfig"] as const) {
        if (options[field] !== undefined)
          throw new InvalidOptionsError(field, "configures the client the broker builds; with `client`, configure that client");
      }
      this.#client = options.client;
      this.#publishClient = options.client;
      this.#ownsClient = false;
    } else {
      if (options.endpoint !== undefined && typeof options.endpoint !== "string") {
        throw new InvalidOptionsError("endpoint", "expected a URL string");
      }
      const region = options.region ?? options.clientConfig?.region ?? (options.endpoint === undefined ? undefined : "us-east-1");
      const config = {
        ...options.clientConfig,
        ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
        ...(region === undefined ? {} : { region }),
        // The SDK only warns on a request timeout unless told to throw (see RELIABILITY.md).
        requestHandler: new NodeHttpHandler({
          connectionTimeout: this.#timeoutMs,
          requestTimeout: this.#timeoutMs,
          throwOnRequestTimeout: true,
          httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }),
        }),
      };
      this.#client = new SQSClient(config);
      this.#publishClient = new SQSClient({ ...config, maxAttempts: 1 });
      this.#ownsClient = true;
      const url = options.endpoint === undefined ? undefined : new URL(options.endpoint);
      if (url?.protocol === "http:" && !isLoopbackHost(url.hostname)) {
        // After the caller had a chance to subscribe; requests are signed, but travel in clear text.
        const message = `[jobs] [sqs] endpoint ${url.host} is not on this machine and does not use TLS (http:)`;
        setImmediate(() => this.events.emit("insecure-connection", { message })).unref();
      }
    }
  }

  /**
   * Runs one SDK call bounded by a timeout (and an optional signal, for receives that stop):
   * a timed-out call rejects with `RequestTimeout`. Tracks connection loss for the events.
   */
  async #call<T>(
    run: (options: { abortSignal: AbortSignal; requestTimeout: number }) => Promise<T>,
    extraMs = 0,
    signal?: AbortSignal,
  ): Promise<T> {
    const timeoutMs = this.#timeoutMs + extraMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const abortSignal = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
    try {
      const result = await run({ abortSignal, requestTimeout: timeoutMs });
      if (this.#down) {
        this.#down = false;
        this.events.emit("reconnected", {});
      }
      return result;
    } catch (error) {
      const failure = timeout.aborted || (error as Error)?.name === "TimeoutError" ? new RequestTimeout(timeoutMs) : error;
      if (!responded(failure) && !signal?.aborted && !this.#down && !this.closed) {
        this.#down = true;
        this.events.emit("disconnected", { error: serialized(failure) });
      }
      throw failure;
    }
  }

  #ensureOpen(): void {
    if (this.closed) throw new BrokerClosedError("[jobs] [sqs] broker is closed");
  }

  #names(queue: string): SqsQueueNames {
    return sqsQueueNames(queue, { prefix: this.#prefix, fifo: this.fifo });
  }

  /** The queue's URLs; creates the queues when allowed, `undefined` when missing and `create` is false. */
  #resolve(queue: string, create: boolean): Promise<QueueUrls | undefined> {
    const names = this.#names(queue);
    const cached = this.#urls.get(names.queue);
    if (cached !== undefined) return cached;
    const lookup = this.#lookup(queue, names, create && this.#create);
    // Only a found queue is remembered: a missing one may be created by someone else later.
    lookup.then(
      (urls) => urls === undefined && this.#urls.delete(names.queue),
      () => this.#urls.delete(names.queue),
    );
    this.#urls.set(names.queue, lookup);
    return lookup;
  }

  async #url(name: string): Promise<string | undefined> {
    try {
      return (await this.#call((o) => this.#client.send(new GetQueueUrlCommand({ QueueName: name }), o))).QueueUrl;
    } catch (error) {
      if (isMissingQueue(error)) return undefined;
      throw error;
    }
  }

  async #lookup(queue: string, names: SqsQueueNames, create: boolean): Promise<QueueUrls | undefined> {
    try {
      const url = await this.#url(names.queue);
      if (url !== undefined) {
        await this.#preflight(names.queue, url);
        return { url, dead: await this.#url(names.dead) };
      }
      if (!create) return undefined;
      const attributes: Record<string, string> = { MaximumMessageSize: String(this.capabilities.maxPayloadBytes) };
      if (this.fifo) attributes.FifoQueue = "true";
      const createQueue = async (name: string, extra: Record<string, string>): Promise<string> => {
        const input = { QueueName: name, Attributes: { ...attributes, ...extra } };
        const out = await this.#call((o) => this.#client.send(new CreateQueueCommand(input), o));
        return out.QueueUrl as string;
      };
      const dead = await createQueue(names.dead, { MessageRetentionPeriod: "1209600" });
      const extra: Record<string, string> = {};
      if (this.#maxReceiveCount > 0) {
        const arn = await this.#call((o) =>
          this.#client.send(new GetQueueAttributesCommand({ QueueUrl: dead, AttributeNames: ["QueueArn"] }), o),
        );
        extra.RedrivePolicy = JSON.stringify({ deadLetterTargetArn: arn.Attributes?.QueueArn, maxReceiveCount: this.#maxReceiveCount });
      }
      return { url: await createQueue(names.queue, extra), dead };
    } catch (error) {
      throw brokerError("queue lookup", queue, error);
    }
  }

  /** A queue made elsewhere may void a guarantee: say so once (`config-warning`), never refuse it. */
  async #preflight(name: string, url: string): Promise<void> {
    const AttributeNames: QueueAttributeName[] = ["MaximumMessageSize", "RedrivePolicy"];
    const a =
      (await this.#call((o) => this.#client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames }), o))).Attributes ?? {};
    const size = Number(a.MaximumMessageSize ?? this.capabilities.maxPayloadBytes);
    if (size < this.capabilities.maxPayloadBytes) {
      const message = `[jobs] [sqs] queue "${name}" takes messages up to ${size} bytes, below maxPayloadBytes (${this.capabilities.maxPayloadBytes}): larger jobs will be refused`;
      this.events.emit("config-warning", { message });
    }
    const receives = Number(
      (JSON.parse(a.RedrivePolicy ?? "{}") as { maxReceiveCount?: unknown }).maxReceiveCount ?? Number.POSITIVE_INFINITY,
    );
    if (receives <= 10) {
      const message = `[jobs] [sqs] queue "${name}" has a RedrivePolicy with maxReceiveCount ${receives}: SQS moves a message away, without its failure, before the worker's crash-loop bound (maxDeliveries, 10 by default) can`;
      this.events.emit("config-warning", { message });
    }
  }

  async #urlsOf(queue: string): Promise<QueueUrls> {
    const urls = await this.#resolve(queue, true);
    if (urls === undefined) {
      throw new UnknownQueueError(queue, `[jobs] [sqs] queue "${queue}" (SQS queue "${this.#names(queue).queue}") does not exist`);
    }
    return urls;
  }

  #batchersOf(url: string, queue: string): UrlBatchers {
    let b = this.#batchers.get(url);
    if (b === undefined) {
      b = {
        send: new Batcher((items) => this.#sendBatch(url, queue, items), 0, MAX_BATCH_BYTES),
        remove: new Batcher((items) => this.#removeBatch(url, queue, items), this.#lingerMs, Number.POSITIVE_INFINITY),
        visibility: new Batcher((items) => this.#visibilityBatch(url, queue, items), this.#lingerMs, Number.POSITIVE_INFINITY),
      };
      this.#batchers.set(url, b);
    }
    return b;
  }

  async #sendBatch(url: string, queue: string, items: readonly Pending<SendEntry, PublishOutcome>[]): Promise<void> {
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
      out = await this.#call((o) => this.#publishClient.send(new SendMessageBatchCommand({ QueueUrl: url, Entries }), o));
    } catch (error) {
      if (isMissingQueue(error)) this.#forget(url);
      const failure = publishError(queue, error);
      for (const item of items) item.resolve({ ok: false, error: failure });
      return;
    }
    const done = new Set<number>();
    const now = Date.now();
    for (const s of out.Successful ?? []) {
      const index = Number(s.Id);
      const item = items[index];
      if (item === undefined || done.has(index)) continue;
      done.add(index);
      item.resolve({ ok: true, duplicate: this.#duplicate(url, item.entry, s.MessageId, now) });
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

  /** FIFO: SQS answers a deduplicated send with the first message's id; this instance remembers the ids it sent. */
  #duplicate(url: string, entry: SendEntry, messageId: string | undefined, now: number): boolean {
    if (entry.dedupeId === undefined || messageId === undefined || entry.dedupeId !== entry.id) return false;
    const key = `${url} ${entry.id}`;
    const seen = this.#sent.get(key);
    if (seen !== undefined && seen.until > now && seen.messageId === messageId) return true;
    if (this.#sent.size > 10_000) for (const [k, v] of this.#sent) if (v.until <= now) this.#sent.delete(k);
    this.#sent.set(key, { messageId, until: now + this.capabilities.dedupeWindowMs });
    return false;
  }

  async #removeBatch(url: string, queue: string, items: readonly Pending<string, void>[]): Promise<void> {
    const Entries = items.map(({ entry }, i) => ({ Id: String(i), ReceiptHandle: entry }));
    const out = await this.#call((o) => this.#client.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries }), o)).catch(
      (error: unknown) => {
        throw brokerError("delete", queue, error);
      },
    );
    settleEntries(items, out.Failed, (code) => brokerError("delete", queue, { name: code }));
  }

  async #visibilityBatch(url: string, queue: string, items: readonly Pending<Visibility, void>[]): Promise<void> {
    const Entries = items.map(({ entry }, i) => ({ Id: String(i), ReceiptHandle: entry.handle, VisibilityTimeout: entry.seconds }));
    const input = { QueueUrl: url, Entries };
    const out = await this.#call((o) => this.#client.send(new ChangeMessageVisibilityBatchCommand(input), o)).catch((error: unknown) => {
      throw brokerError("change visibility", queue, error);
    });
    settleEntries(items, out.Failed, (code) => brokerError("change visibility", queue, { name: code }));
  }

  #forget(url: string): void {
    for (const [name, urls] of this.#urls)
      void urls.then(
        (u) => u?.url === url && this.#urls.delete(name),
        () => {},
      );
  }

  #entry(queue: string, m: OutgoingMessage): SendEntry {
    const fifo = this.fifo;
    return {
      id: m.id,
      body: m.body,
      // Not clamped: core never asks for more than maxDelayMs, and SQS refuses the one entry that does.
      delaySeconds: Math.ceil(m.delayMs / 1000),
      dedupeId: fifo ? (m.dedupe ? m.id : randomUUID()) : undefined,
      groupId: fifo ? this.#groupId(queue, m) : undefined,
    };
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<PublishOutcome[]> {
    this.#ensureOpen();
    if (!Array.isArray(messages)) throw new InvalidOptionsError("messages", "expected an array");
    this.#names(queue);
    let urls: QueueUrls;
    try {
      urls = await this.#urlsOf(queue);
    } catch (error) {
      return messages.map(() => ({ ok: false, error: error as JobsError }));
    }
    const { send } = this.#batchersOf(urls.url, queue);
    const limit = this.capabilities.maxPayloadBytes;
    return Promise.all(
      messages.map((m): PublishOutcome | Promise<PublishOutcome> => {
        const size = Buffer.byteLength(m.body, "utf8");
        if (size > limit) return { ok: false, error: new PayloadTooLargeError(size, limit, "message") };
        if (this.fifo && m.delayMs > 0) {
          return {
            ok: false,
            error: new UnsupportedError(`[jobs] [sqs] FIFO queues cannot delay a single message (delay ${m.delayMs} ms)`),
          };
        }
        return send.add(this.#entry(queue, m), size);
      }),
    );
  }

  /** Runs a settle operation after taking the delivery out of its consumer's hands. */
  async settle(delivery: SqsDelivery, operation: () => Promise<void>): Promise<void> {
    delivery.begin();
    await operation();
  }

  /** @internal Deletes the delivered message. */
  remove(d: SqsDelivery): Promise<void> {
    return this.#batchersOf(d.consumer.url, d.consumer.queue).remove.add(d.handle);
  }

  /** @internal Sends `body` as a new message (count restarts at 1), then deletes the delivered one. */
  async replace(d: SqsDelivery, body: string, delayMs: number, id: string): Promise<void> {
    const { url, queue } = d.consumer;
    const size = Buffer.byteLength(body, "utf8");
    const entry = this.#entry(queue, { id, body, delayMs: this.fifo ? 0 : delayMs, priority: 2, dedupe: false });
    const outcome = await this.#batchersOf(url, queue).send.add(entry, size);
    if (!outcome.ok) throw outcome.error;
    await this.remove(d);
  }

  /** @internal ChangeMessageVisibility of the delivered message. */
  changeVisibility(d: SqsDelivery, seconds: number): Promise<void> {
    return this.#batchersOf(d.consumer.url, d.consumer.queue).visibility.add({ handle: d.handle, seconds });
  }

  /** @internal Sends the record to `<queue>-dead` with the failure as attributes, then deletes the delivered message. */
  async bury(d: SqsDelivery, record: DeadLetterRecord): Promise<void> {
    const { queue } = d.consumer;
    const urls = await this.#urlsOf(queue);
    if (urls.dead === undefined)
      throw new UnknownQueueError(queue, `[jobs] [sqs] dead-letter queue "${this.#names(queue).dead}" does not exist`);
    const { attributes, bytes } = deadLetterAttributes(record, this.capabilities.maxPayloadBytes);
    const entry: SendEntry = {
      id: randomUUID(),
      body: record.body,
      delaySeconds: 0,
      dedupeId: this.fifo ? randomUUID() : undefined,
      // A group per letter: one shared group would hide all but the first batch from inspection.
      groupId: this.fifo ? randomUUID() : undefined,
      attributes,
    };
    const outcome = await this.#batchersOf(urls.dead, queue).send.add(entry, bytes);
    if (!outcome.ok) throw outcome.error;
    await this.remove(d);
  }

  async consume(queue: string, options: ConsumeOptions, onDelivery: (delivery: Delivery) => void): Promise<Subscription> {
    this.#ensureOpen();
    if (!Number.isInteger(options?.prefetch) || options.prefetch < 1)
      throw new InvalidOptionsError("prefetch", "expected a positive integer");
    if (!(options.leaseMs > 0)) throw new InvalidOptionsError("leaseMs", "expected a positive number");
    const { url } = await this.#urlsOf(queue);
    this.#ensureOpen();
    // A poll may pick a message up to its wait before the answer arrives (local-aws-sqs holds the
    // answer until the batch is full), and leases count from the request: the wait is added.
    const visibility = Math.min(43_200, Math.ceil(options.leaseMs / 1000) + this.#waitSeconds);
    const loops = this.#maxLoops ?? Math.min(10, Math.ceil(options.prefetch / 10));
    const consumer = new Consumer<SqsDelivery>(queue, url, options.prefetch, visibility, loops, onDelivery);
    this.#consumers.add(consumer);
    // One short poll first, awaited: a worker starting on a backlog then sees every priority
    // level's first batch before it picks a job, instead of whichever level answered first.
    const count = Math.min(10, options.prefetch);
    const sentAt = Date.now();
    consumer.reserved += count;
    const first = await this.#receive(consumer, count, 0).catch(() => []);
    consumer.reserved -= count;
    for (const m of first) this.#deliver(consumer, m, sentAt + visibility * 1000);
    void this.#loop(consumer, true);
    return {
      stop: async () => {
        consumer.stopped = true;
        consumer.wake();
      },
      // A receive in flight can take messages (counting them) that reach this process only when it
      // answers: a pause resolves once none is out, so a crash meanwhile counts only what core holds.
      pause: async () => {
        consumer.paused = true;
        while (consumer.reserved > 0 && !consumer.stopped && !this.closed) await consumer.capacity();
      },
      resume: () => {
        consumer.paused = false;
        consumer.wake();
      },
    };
  }

  async #loop(c: Consumer<SqsDelivery>, lead: boolean): Promise<void> {
    c.loops++;
    let failures = 0;
    try {
      while (!c.stopped && !this.closed) {
        const free = c.prefetch - c.unsettled - c.reserved;
        // Refill in batches of at least half of 10 (or of the prefetch): a receive per freed slot
        // would cost a request per job.
        if (c.paused || free <= 0 || (free < Math.ceil(Math.min(10, c.prefetch) / 2) && c.unsettled > 0)) {
          await c.capacity();
          continue;
        }
        const count = Math.min(10, free);
        c.reserved += count;
        const sentAt = Date.now();
        let messages: Message[];
        try {
          messages = await this.#receive(c, count);
        } catch (error) {
          if (c.stopped || this.closed) return;
          failures++;
          // Connection loss is reported once, as `disconnected`; anything SQS said is an error event.
          if (responded(error)) this.events.emit("error", { error: serialized(error) });
          await c.pause(Math.min(5_000, 100 * 2 ** Math.min(failures, 6)));
          continue;
        } finally {
          c.reserved -= count;
          // A pause waits for receives in flight.
          if (c.paused) queueMicrotask(() => c.wake());
        }
        failures = 0;
        if (c.stopped || this.closed) {
          // Stopped while this poll was out: hand its messages straight back.
          const back = this.#batchersOf(c.url, c.queue).visibility;
          for (const m of messages) back.add({ handle: m.ReceiptHandle as string, seconds: 0 }).catch(() => {});
          return;
        }
        const deadline = sentAt + c.visibilitySeconds * 1000;
        for (const m of messages) this.#deliver(c, m, deadline);
        if (messages.length === 10 && c.loops < c.maxLoops) void this.#loop(c, false);
        else if (!lead && messages.length === 0) return;
      }
    } catch (error) {
      this.events.emit("error", { error: serialized(error) });
    } finally {
      c.loops--;
    }
  }

  async #receive(c: Consumer<SqsDelivery>, count: number, waitSeconds = this.#waitSeconds): Promise<Message[]> {
    const input = {
      QueueUrl: c.url,
      MaxNumberOfMessages: count,
      WaitTimeSeconds: waitSeconds,
      VisibilityTimeout: c.visibilitySeconds,
      AttributeNames: RECEIVE_ATTRIBUTES,
      MessageSystemAttributeNames: ["ApproximateReceiveCount" as const],
    };
    const out = await this.#call((o) => this.#client.send(new ReceiveMessageCommand(input), o), waitSeconds * 1000, c.abort.signal);
    return out.Messages ?? [];
  }

  #deliver(c: Consumer<SqsDelivery>, m: Message, deadline: number): void {
    const count = Number(m.Attributes?.ApproximateReceiveCount ?? 1);
    const delivery = new SqsDelivery(this, c, m.ReceiptHandle as string, m.Body ?? "", Number.isFinite(count) ? count : 1, deadline);
    c.unsettled++;
    c.held.add(delivery);
    try {
      c.onDelivery(delivery);
    } catch (error) {
      this.events.emit("error", { error: serialized(error) });
    }
  }

  async #attributes(url: string): Promise<Record<string, string>> {
    const AttributeNames: QueueAttributeName[] = [
      "ApproximateNumberOfMessages",
      "ApproximateNumberOfMessagesNotVisible",
      "ApproximateNumberOfMessagesDelayed",
    ];
    const out = await this.#call((o) => this.#client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames }), o));
    return out.Attributes ?? {};
  }

  async counts(queue: string): Promise<QueueCounts> {
    this.#ensureOpen();
    this.#names(queue);
    try {
      const urls = await this.#resolve(queue, false);
      if (urls === undefined) return { waiting: 0, delayed: 0, active: 0, dead: 0 };
      const [main, dead] = await Promise.all([this.#attributes(urls.url), urls.dead === undefined ? {} : this.#attributes(urls.dead)]);
      const n = (a: Record<string, string>, key: string): number => Number(a[key] ?? 0);
      const inFlight = n(main, "ApproximateNumberOfMessagesNotVisible");
      const ready = n(main, "ApproximateNumberOfMessages") - (this.#countsIncludeInFlight ? inFlight : 0);
      const deadInFlight = this.#countsIncludeInFlight ? 0 : n(dead, "ApproximateNumberOfMessagesNotVisible");
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

  /**
   * Receives every message of the dead-letter queue (hidden while this runs), deletes those
   * `remove` picks and makes the others visible again. Listing and removing therefore
   * see one snapshot; two inspections at once each see only part of the queue.
   */
  async #scanDead(queue: string, remove: (key: string) => boolean): Promise<{ kept: DeadLetter[]; removed: number }> {
    this.#ensureOpen();
    const urls = await this.#resolve(queue, false);
    if (urls?.dead === undefined) return { kept: [], removed: 0 };
    const dead = urls.dead;
    const { remove: del, visibility } = this.#batchersOf(dead, queue);
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
        const out = await this.#call((o) => this.#client.send(new ReceiveMessageCommand(input), o));
        const batch = out.Messages ?? [];
        if (batch.length === 0) break;
        for (const m of batch) {
          const key = m.MessageId as string;
          seen.set(key, {
            letter: deadLetterOf(m, key, this.#maxReceiveCount),
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
    this.#ensureOpen();
    const urls = await this.#resolve(queue, false);
    if (urls === undefined) return;
    try {
      for (const url of [urls.url, urls.dead]) {
        if (url === undefined) continue;
        await this.#call((o) => this.#client.send(new PurgeQueueCommand({ QueueUrl: url }), o)).catch((error: unknown) => {
          // One PurgeQueue per queue per 60 s: the running one still applies; the drain below covers the rest.
          if (!/PurgeQueueInProgress/.test(`${(error as Error)?.name} ${String((error as { Code?: unknown })?.Code)}`)) throw error;
        });
        const { remove } = this.#batchersOf(url, queue);
        for (let i = 0; i < 100; i++) {
          const input = { QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 60 };
          const batch = (await this.#call((o) => this.#client.send(new ReceiveMessageCommand(input), o))).Messages ?? [];
          if (batch.length === 0) break;
          await Promise.all(batch.map((m) => remove.add(m.ReceiptHandle as string)));
        }
      }
    } catch (error) {
      throw brokerError("purge", queue, error);
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.closed = true;
    const pending: Promise<void>[] = [];
    for (const c of this.#consumers) {
      c.stopped = true;
      c.abort.abort();
      c.wake();
      // Unsettled deliveries go back to their queue now instead of after their visibility timeout.
      for (const d of c.held) {
        d.settled = true;
        pending.push(
          this.#batchersOf(c.url, c.queue)
            .visibility.add({ handle: d.handle, seconds: 0 })
            .catch(() => {}),
        );
      }
      c.held.clear();
    }
    this.#consumers.clear();
    await Promise.all([
      ...pending,
      ...[...this.#batchers.values()].flatMap((b) => [b.send.drain(), b.remove.drain(), b.visibility.drain()]),
    ]);
    if (this.#ownsClient) {
      this.#client.destroy();
      this.#publishClient.destroy();
    }
  }
}

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

/** Creates a broker on Amazon SQS (or a compatible endpoint). Queues are created on first use unless `queues: "verify"`. */
export function createSqsBroker(options: SqsBrokerOptions = {}): Broker {
  return new SqsBroker(options);
}
