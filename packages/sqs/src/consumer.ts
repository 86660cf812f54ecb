/** consume(): the receive loops, the Subscription, and the Delivery with its settles. */
import { randomUUID } from "node:crypto";
import { type Message, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import {
  assertConsumeOptions,
  BrokerClosedError,
  type BrokerEventMap,
  brokerClosedError,
  type ConsumeOptions,
  type DeadLetterRecord,
  type Delivery,
  type Emitter,
  LeaseLostError,
  type OutgoingMessage,
  reconnectDelay,
  type Subscription,
  UnknownQueueError,
} from "@jobs/core/adapter";
import { RECEIVE_ATTRIBUTES, responded, type SqsConnection, serialized } from "./connection.js";
import type { Batches, SendEntry } from "./internal/batches.js";
import { ConsumerState, type Leased } from "./internal/consumer-state.js";
import { deadLetterAttributes } from "./internal/dead-letters.js";
import type { Queues } from "./internal/queues.js";
import type { SqsSettings } from "./options.js";

/**
 * How long close() waits, after handing back what it held, for receives still out to answer (and
 * hands back what they took). SQS answers a long poll as soon as it has a message, so a receive
 * that took a handed-back message answers well within it; one that took nothing is aborted then.
 */
const CLOSE_RECEIVE_GRACE_MS = 2_000;

type ConsumeSettings = Pick<SqsSettings, "fifo" | "waitSeconds" | "maxLoops" | "maxPayloadBytes">;

/** What a delivery asks of its consumers: the broker's state and the SQS side of each settle. */
interface DeliveryHost {
  readonly closed: boolean;
  readonly fifo: boolean;
  remove(d: SqsDelivery): Promise<void>;
  replace(d: SqsDelivery, body: string, delayMs: number, id: string): Promise<void>;
  changeVisibility(d: SqsDelivery, seconds: number): Promise<void>;
  bury(d: SqsDelivery, record: DeadLetterRecord): Promise<void>;
}

class SqsDelivery implements Delivery, Leased {
  settled = false;
  constructor(
    private readonly host: DeliveryHost,
    readonly consumer: ConsumerState<SqsDelivery>,
    readonly handle: string,
    readonly body: string,
    readonly deliveryCount: number,
    public deadline: number,
  ) {}

  ack(): Promise<void> {
    return this.#settle(() => this.host.remove(this));
  }

  retry(next: OutgoingMessage): Promise<void> {
    return this.#settle(() => this.host.replace(this, next.body, next.delayMs, next.id));
  }

  defer(delayMs: number): Promise<void> {
    if (this.host.fifo) return this.#settle(() => this.host.changeVisibility(this, Math.ceil(delayMs / 1000)));
    return this.#settle(() => this.host.replace(this, this.body, delayMs, randomUUID()));
  }

  deadLetter(record: DeadLetterRecord): Promise<void> {
    return this.#settle(() => this.host.bury(this, record));
  }

  async extendLease(ms: number): Promise<void> {
    if (this.host.closed) throw new BrokerClosedError();
    if (this.settled || Date.now() >= this.deadline) throw new LeaseLostError();
    const seconds = Math.min(43_200, Math.ceil(ms / 1000));
    const sentAt = Date.now();
    await this.host.changeVisibility(this, seconds);
    // SQS counts the new timeout from now, even when it ends sooner than the old one.
    this.deadline = sentAt + seconds * 1000;
  }

  /** Takes the delivery out of its consumer's hands (or says why it cannot be settled), then runs the settle. */
  async #settle(operation: () => Promise<void>): Promise<void> {
    if (this.host.closed) throw brokerClosedError("sqs", "the delivery went back to its queue");
    if (this.settled || Date.now() >= this.deadline) {
      this.consumer.release(this);
      throw new LeaseLostError();
    }
    this.settled = true;
    this.consumer.release(this);
    await operation();
  }
}

/** The consumers of one broker: their receive loops and the settles of their deliveries. */
export class SqsConsumers implements DeliveryHost {
  readonly #all = new Set<ConsumerState<SqsDelivery>>();

  constructor(
    private readonly connection: SqsConnection,
    private readonly queues: Queues,
    private readonly batches: Batches,
    /** The SendMessageBatch entry of a message (the publisher's). */
    private readonly entry: (queue: string, m: OutgoingMessage) => SendEntry,
    private readonly events: Emitter<BrokerEventMap>,
    private readonly settings: ConsumeSettings,
  ) {}

  get closed(): boolean {
    return this.connection.closed;
  }

  get fifo(): boolean {
    return this.settings.fifo;
  }

  async consume(queue: string, options: ConsumeOptions, onDelivery: (delivery: Delivery) => void): Promise<Subscription> {
    this.connection.ensureOpen();
    assertConsumeOptions(options);
    const { url } = await this.queues.urlsOf(queue);
    this.connection.ensureOpen();
    // A poll may pick a message up to its wait before the answer arrives (local-aws-sqs holds the
    // answer until the batch is full), and leases count from the request: the wait is added.
    const visibility = Math.min(43_200, Math.ceil(options.leaseMs / 1000) + this.settings.waitSeconds);
    const loops = this.settings.maxLoops ?? Math.min(10, Math.ceil(options.prefetch / 10));
    const consumer = new ConsumerState<SqsDelivery>(queue, url, options.prefetch, visibility, loops, onDelivery);
    this.#all.add(consumer);
    // One short poll first, awaited: a worker starting on a backlog then sees every priority
    // level's first batch before it picks a job, instead of whichever level answered first.
    // close() waits for it (it answers at once), and it hands back what it took if close (or stop)
    // began meanwhile: unread, those messages would stay hidden for the whole lease.
    const first = this.#firstPoll(consumer, Math.min(10, options.prefetch));
    consumer.firstPoll = first;
    await first;
    consumer.firstPoll = undefined;
    this.#spawn(consumer, true);
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

  /** The short poll a consumer starts with: delivers what it took, or hands it back when the consumer stopped meanwhile. */
  async #firstPoll(c: ConsumerState<SqsDelivery>, count: number): Promise<void> {
    const sentAt = Date.now();
    c.reserved += count;
    const messages = await this.#receive(c, count, 0).catch((): Message[] => []);
    c.reserved -= count;
    if (c.stopped || this.closed) return this.#handBack(c, messages);
    for (const m of messages) this.#deliver(c, m, sentAt + c.visibilitySeconds * 1000);
  }

  /** Makes messages a receive took after stop or close visible again at once. */
  async #handBack(c: ConsumerState<SqsDelivery>, messages: readonly Message[]): Promise<void> {
    const back = this.batches.of(c.url, c.queue).visibility;
    await Promise.all(messages.map((m) => back.add({ handle: m.ReceiptHandle as string, seconds: 0 }).catch(() => {})));
  }

  /** Starts a receive loop, tracked so that close() can wait for the receive it has out. */
  #spawn(c: ConsumerState<SqsDelivery>, lead: boolean): void {
    const running = this.#loop(c, lead);
    c.running.add(running);
    void running.finally(() => c.running.delete(running));
  }

  async #loop(c: ConsumerState<SqsDelivery>, lead: boolean): Promise<void> {
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
          // Connection loss is reported once, as `disconnected`; anything SQS said is an error event.
          if (responded(error)) this.events.emit("error", { error: serialized(error) });
          await c.pause(reconnectDelay(failures++, { initialMs: 200, maxMs: 5_000 }));
          continue;
        } finally {
          c.reserved -= count;
          // A pause waits for receives in flight.
          if (c.paused) queueMicrotask(() => c.wake());
        }
        failures = 0;
        if (c.stopped || this.closed) {
          // Stopped while this poll was out: hand its messages straight back (close() waits for it).
          await this.#handBack(c, messages);
          return;
        }
        const deadline = sentAt + c.visibilitySeconds * 1000;
        for (const m of messages) this.#deliver(c, m, deadline);
        if (messages.length === 10 && c.loops < c.maxLoops) this.#spawn(c, false);
        else if (!lead && messages.length === 0) return;
      }
    } catch (error) {
      this.events.emit("error", { error: serialized(error) });
    } finally {
      c.loops--;
    }
  }

  async #receive(c: ConsumerState<SqsDelivery>, count: number, waitSeconds = this.settings.waitSeconds): Promise<Message[]> {
    const input = {
      QueueUrl: c.url,
      MaxNumberOfMessages: count,
      WaitTimeSeconds: waitSeconds,
      VisibilityTimeout: c.visibilitySeconds,
      AttributeNames: RECEIVE_ATTRIBUTES,
      MessageSystemAttributeNames: ["ApproximateReceiveCount" as const],
    };
    const { connection } = this;
    const out = await connection.call(
      (o) => connection.client.send(new ReceiveMessageCommand(input), o),
      waitSeconds * 1000,
      c.abort.signal,
    );
    return out.Messages ?? [];
  }

  #deliver(c: ConsumerState<SqsDelivery>, m: Message, deadline: number): void {
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

  /** Deletes the delivered message. */
  remove(d: SqsDelivery): Promise<void> {
    return this.batches.of(d.consumer.url, d.consumer.queue).remove.add(d.handle);
  }

  /** Notes a message of `c` visible again after `ms`, when a receive in flight may still take it (within a wait). */
  #visibleAgain(c: ConsumerState<SqsDelivery>, ms: number): void {
    if (ms <= this.settings.waitSeconds * 1000) c.visibleAgain(ms);
  }

  /** Sends `body` as a new message (count restarts at 1), then deletes the delivered one. */
  async replace(d: SqsDelivery, body: string, delayMs: number, id: string): Promise<void> {
    const { url, queue } = d.consumer;
    this.#visibleAgain(d.consumer, this.fifo ? 0 : delayMs);
    const entry = this.entry(queue, { id, body, delayMs: this.fifo ? 0 : delayMs, priority: 2, dedupe: false });
    const outcome = await this.batches.of(url, queue).send.add(entry, Buffer.byteLength(body, "utf8"));
    if (!outcome.ok) throw outcome.error;
    await this.remove(d);
  }

  /** ChangeMessageVisibility of the delivered message. */
  changeVisibility(d: SqsDelivery, seconds: number): Promise<void> {
    this.#visibleAgain(d.consumer, seconds * 1000);
    return this.batches.of(d.consumer.url, d.consumer.queue).visibility.add({ handle: d.handle, seconds });
  }

  /** Sends the record to `<queue>-dead` with the failure as attributes, then deletes the delivered message. */
  async bury(d: SqsDelivery, record: DeadLetterRecord): Promise<void> {
    const { queue } = d.consumer;
    const urls = await this.queues.urlsOf(queue);
    if (urls.dead === undefined)
      throw new UnknownQueueError(queue, `[jobs] [sqs] dead-letter queue "${this.queues.names(queue).dead}" does not exist`);
    const { attributes, bytes } = deadLetterAttributes(record, this.settings.maxPayloadBytes);
    const entry: SendEntry = {
      id: randomUUID(),
      body: record.body,
      delaySeconds: 0,
      dedupeId: this.fifo ? randomUUID() : undefined,
      // A group per letter: one shared group would hide all but the first batch from inspection.
      groupId: this.fifo ? randomUUID() : undefined,
      attributes,
    };
    const outcome = await this.batches.of(urls.dead, queue).send.add(entry, bytes);
    if (!outcome.ok) throw outcome.error;
    await this.remove(d);
  }

  /**
   * Stops every receive loop and gives unsettled deliveries back to their queue now instead of after
   * their visibility timeout. A long poll still out keeps taking messages on the server even when
   * its client gives up on it (SQS serves an aborted receive; so does the emulator), and it would
   * take the very messages handed back here, hidden for a whole lease: so close() waits for the
   * receives in flight to answer and hands back what they bring, for at most `CLOSE_RECEIVE_GRACE_MS`
   * after the hand-backs (SQS answers a long poll as soon as it has a message), then aborts the rest.
   */
  async close(): Promise<void> {
    const all = [...this.#all];
    this.#all.clear();
    const pending: Promise<void>[] = [];
    for (const c of all) {
      c.stopped = true;
      c.wake();
      for (const d of c.held) {
        d.settled = true;
        c.visibleAgain(0);
        pending.push(
          this.batches
            .of(c.url, c.queue)
            .visibility.add({ handle: d.handle, seconds: 0 })
            .catch(() => {}),
        );
      }
      c.held.clear();
    }
    await Promise.all(pending);
    // Only a receive that may have taken a message this broker made visible is waited for: an idle
    // consumer's close stays immediate.
    const since = Date.now() - this.settings.waitSeconds * 1000;
    // A consumer's first poll is short (no wait): it is always waited for.
    const receives = [
      ...all.filter((c) => c.madeVisibleAt >= since).flatMap((c) => [...c.running]),
      ...all.flatMap((c) => (c.firstPoll === undefined ? [] : [c.firstPoll])),
    ];
    if (receives.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_RECEIVE_GRACE_MS);
      });
      await Promise.race([Promise.all(receives), grace]);
      clearTimeout(timer);
    }
    for (const c of all) c.abort.abort();
    await Promise.all(all.flatMap((c) => [...c.running]));
  }
}
