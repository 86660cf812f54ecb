/**
 * consume() and its Subscription: a ready and a delayed pull consumer per queue; deliveries
 * (`NatsDelivery`: ack, retry, defer, deadLetter, extendLease) held until settled; the delay
 * scheduler that moves due messages to the ready subject.
 */
import {
  assertConsumeOptions,
  BrokerClosedError,
  type BrokerEventMap,
  brokerClosedError,
  type ConsumeOptions,
  clock,
  type DeadLetterRecord,
  type Delivery,
  type Emitter,
  type JobsError,
  LeaseLostError,
  type OutgoingMessage,
  type Subscription,
  serializeError,
} from "@jobs/core/adapter";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { closedError } from "./connection.js";
import { deliveredIndex, sequenceOf, tokenAt } from "./internal/ack-subject.js";
import { HeldDeliveries } from "./internal/held-deliveries.js";
import { Puller } from "./internal/puller.js";
import { DUE, ensureConsumer, type Subjects } from "./internal/topology.js";

/** The acknowledgement that removes a message. */
const ACK: Uint8Array = new TextEncoder().encode("+ACK");
const WPI: Uint8Array = new TextEncoder().encode("+WPI");
/** Settling this close to the server's lease end is refused: the server may have redelivered already. */
const LEASE_MARGIN_MS = 20;
const SCHEDULER_PREFETCH = 128;
/**
 * How long a pull request of a ready consumer lasts on the server: the longest `Subscription.pause`
 * waits for the requests already sent to end (JetStream cannot cancel one). Idle, each costs one
 * request and one 408 per period; with a backlog, requests are filled long before they expire.
 */
const READY_EXPIRES_MS = 2_000;
/** AckWait of the delay consumer: a server restart forgets nak delays, so held jobs come back (and are held again) within it. */
const SCHEDULER_ACK_WAIT_MS = 5_000;

/** What consumers need of the connection. */
export interface ConsumerLink {
  readonly closed: boolean;
  readonly connected: boolean;
  readonly jsm: JetStreamManager;
  open(): Promise<NatsConnection>;
  /** Resolves once the server has received what is published right after the call (in the same synchronous run). */
  confirm(): Promise<void>;
  /** Publishes without waiting (acks, naks, heartbeats). */
  publishRaw(subject: string, data: string | Uint8Array): void;
}

/** What consumers need of the publisher: re-publishes awaiting their PubAck. */
export interface ConsumerSender {
  /** Publishes to a queue's ready or delayed subject. */
  send(queue: string, body: string | Uint8Array, delayMs: number, msgId: string | undefined): Promise<boolean>;
  /** Stores a dead letter. */
  bury(queue: string, record: DeadLetterRecord, msgId: string): Promise<boolean>;
}

/** A pull consumer and how to (re)create it on the server. */
interface Entry {
  readonly puller: Puller;
  readonly setup: () => Promise<void>;
}

/** The consumers of one broker, and the deliveries it holds (the host of every `NatsDelivery`). */
export class NatsConsumers {
  readonly #link: ConsumerLink;
  readonly #sender: ConsumerSender;
  readonly #subjects: Subjects;
  readonly #events: Emitter<BrokerEventMap>;
  readonly #stream: string;
  readonly #holdMs: number;
  readonly #pullers = new Set<Entry>();
  readonly #held = new HeldDeliveries<NatsDelivery>();

  constructor(
    link: ConsumerLink,
    sender: ConsumerSender,
    subjects: Subjects,
    events: Emitter<BrokerEventMap>,
    settings: { readonly stream: string; readonly holdMs: number },
  ) {
    this.#link = link;
    this.#sender = sender;
    this.#subjects = subjects;
    this.#events = events;
    this.#stream = settings.stream;
    this.#holdMs = settings.holdMs;
  }

  get closed(): boolean {
    return this.#link.closed;
  }

  publishRaw(subject: string, data: string | Uint8Array): void {
    this.#link.publishRaw(subject, data);
  }

  confirm(): Promise<void> {
    return this.#link.confirm();
  }

  send(queue: string, body: string | Uint8Array, delayMs: number, msgId: string | undefined): Promise<boolean> {
    return this.#sender.send(queue, body, delayMs, msgId);
  }

  bury(queue: string, record: DeadLetterRecord, msgId: string): Promise<boolean> {
    return this.#sender.bury(queue, record, msgId);
  }

  /** A delivery ended (settled or lost): it no longer goes back to its queue on close. */
  forget(delivery: NatsDelivery): void {
    this.#held.delete(delivery);
  }

  async consume(queue: string, options: ConsumeOptions, onDelivery: (delivery: Delivery) => void): Promise<Subscription> {
    const names = this.#subjects.of(queue);
    assertConsumeOptions(options);
    const nc = await this.#link.open();
    const api = (durable: string): string => `$JS.API.CONSUMER.MSG.NEXT.${this.#stream}.${durable}`;
    // AckWait is set in whole ms (sent as ns): a lease under 1 ms, which core's check lets through, becomes 1 ms.
    const leaseMs = Math.ceil(options.leaseMs);
    let ackWaitMs = leaseMs;
    const ready = new Puller(
      nc,
      api(`ready_${queue}`),
      options.prefetch,
      (msg) => {
        const delivery = new NatsDelivery(this, ready, queue, msg, ackWaitMs, leaseMs);
        // A second copy of a message this process still holds (its AckWait ran out while acks or
        // heartbeats could not reach the server, or the server sent it twice): the held delivery
        // takes the new lease; the message is not handed out a second time.
        const held = this.#held.find(delivery.seq);
        if (held !== undefined) {
          held.renew(msg);
          ready.release();
          return;
        }
        this.#held.add(delivery);
        try {
          onDelivery(delivery);
        } catch (error) {
          this.#events.emit("error", { error: serializeError(error) });
        }
      },
      READY_EXPIRES_MS,
    );
    const scheduler = new Puller(nc, api(`delayed_${queue}`), SCHEDULER_PREFETCH, (msg) => this.#promote(scheduler, queue, msg));
    const entries: Entry[] = [
      {
        puller: ready,
        setup: async () => {
          ackWaitMs = await ensureConsumer(this.#link.jsm, this.#stream, `ready_${queue}`, names.ready, leaseMs);
          ready.reset();
        },
      },
      {
        puller: scheduler,
        setup: async () => {
          await ensureConsumer(this.#link.jsm, this.#stream, `delayed_${queue}`, names.delayed, SCHEDULER_ACK_WAIT_MS);
          scheduler.reset();
        },
      },
    ];
    try {
      await Promise.all(entries.map((entry) => entry.setup()));
    } catch (error) {
      ready.stop();
      scheduler.stop();
      throw error;
    }
    if (this.#link.closed) throw closedError();
    for (const entry of entries) this.#pullers.add(entry);
    return {
      stop: async () => {
        for (const entry of entries) {
          entry.puller.stop();
          this.#pullers.delete(entry);
        }
        if (this.#link.connected) await nc.flush().catch(() => {});
      },
      // Only the ready consumer hands out deliveries (the scheduler's only move messages to it).
      pause: () => ready.pause(),
      resume: () => ready.resume(),
    };
  }

  /** A delayed message: held again with nak(remaining) until due, then published to the ready subject and acked. */
  #promote(scheduler: Puller, queue: string, msg: Msg): void {
    const reply = msg.reply as string;
    const remaining = Number(msg.headers?.get(DUE)) - Date.now();
    if (remaining > 0) {
      this.publishRaw(reply, `-NAK {"delay":${Math.ceil(Math.min(remaining, this.#holdMs)) * 1e6}}`);
      scheduler.release();
      return;
    }
    this.send(queue, msg.data, 0, `${queue}#${sequenceOf(reply)}`)
      .then(
        () => this.publishRaw(reply, ACK),
        (error: unknown) => {
          this.publishRaw(reply, `-NAK {"delay":${1e9}}`);
          if (!this.closed) this.#events.emit("error", { error: serializeError(error) });
        },
      )
      .finally(() => scheduler.release());
  }

  /** After a reconnect: every consumer again on the server (a restarted server may have lost them), pulling on a fresh inbox. */
  async restart(): Promise<void> {
    for (const p of this.#pullers) await p.setup();
  }

  /** The first step of close(): no more pull requests. */
  stop(): void {
    for (const { puller } of this.#pullers) puller.stop();
    this.#pullers.clear();
  }

  /** Unsettled deliveries go back to their queue at once instead of after their lease. */
  handBack(): void {
    for (const delivery of this.#held.drain()) if (delivery.release()) this.publishRaw(delivery.reply, "-NAK");
  }
}

/** One delivery of a ready message, leased until the server's AckWait ends (kept longer by heartbeats when asked). */
class NatsDelivery implements Delivery {
  readonly body: string;
  /** Links in the broker's HeldDeliveries. */
  prev: NatsDelivery | undefined = undefined;
  next: NatsDelivery | undefined = undefined;
  chained: NatsDelivery | undefined = undefined;
  readonly deliveryCount: number;
  /** Stream sequence of the message ("" if the ack subject is unreadable). */
  readonly seq: string;
  /** Ack subject of the server's latest delivery of this message (a redelivery absorbed by `renew` replaces it). */
  reply: string;
  #expiresAt: number;
  #deadline: number;
  #settled = false;
  /** A heartbeat timer is armed. */
  #keeping = false;
  /** Bumped by `renew`: a heartbeat confirmation that fails after a renewal does not shorten the renewed lease. */
  #generation = 0;

  constructor(
    private readonly host: NatsConsumers,
    private readonly puller: Puller,
    private readonly queue: string,
    msg: Msg,
    private readonly ackWaitMs: number,
    leaseMs: number,
  ) {
    const reply = msg.reply as string;
    this.reply = reply;
    this.body = msg.string();
    const delivered = deliveredIndex(reply);
    this.deliveryCount = delivered < 0 ? 0 : Number(tokenAt(reply, delivered));
    this.seq = delivered < 0 ? "" : tokenAt(reply, delivered + 1);
    const now = clock.now();
    this.#expiresAt = now + ackWaitMs;
    this.#deadline = now + leaseMs;
    if (leaseMs > ackWaitMs) this.#keepAlive();
  }

  /**
   * The server redelivered this message (its AckWait ran out, e.g. while a partition kept our
   * acks and heartbeats from it) to this same consumer while we still hold it: the held delivery
   * stays the only one (the handler must not run twice in one process), with the new delivery's
   * ack subject and the lease the server restarted with it.
   */
  renew(msg: Msg): void {
    this.reply = msg.reply as string;
    this.#generation++;
    this.#expiresAt = clock.now() + this.ackWaitMs;
    if (this.#deadline > this.#expiresAt) this.#keepAlive();
  }

  /** Ends the delivery locally; false when it had already ended. */
  release(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    this.host.forget(this);
    this.puller.release();
    return true;
  }

  #begin(): JobsError | undefined {
    if (this.host.closed) return brokerClosedError("nats", "the delivery went back to its queue");
    if (this.#settled) return new LeaseLostError("[jobs] [nats] the delivery was already settled");
    const lost = clock.now() >= this.#expiresAt - LEASE_MARGIN_MS;
    this.release();
    return lost ? new LeaseLostError() : undefined;
  }

  /** Sends working() while the lease this consumer asked for is longer than the server's AckWait. */
  #keepAlive(): void {
    if (this.#keeping) return;
    this.#keeping = true;
    const timer = setTimeout(() => {
      this.#keeping = false;
      if (this.#settled || this.host.closed) return;
      const now = clock.now();
      if (now >= this.#expiresAt - LEASE_MARGIN_MS || now >= this.#deadline) return;
      // A failure is the connection's: the lease falls back, and the next settle is refused.
      this.#touch(now).catch(() => {});
      if (this.#deadline > this.#expiresAt) this.#keepAlive();
    }, this.ackWaitMs / 2);
    timer.unref();
  }

  /**
   * Sends a heartbeat, which restarts the AckWait. Unconfirmed (the connection dropped), the server
   * may never have seen it, so the lease falls back to what it was: otherwise a later ack would pass
   * the local check after the server redelivered the message elsewhere, and ack the other
   * consumer's delivery (acks name the stream sequence).
   */
  #touch(now: number): Promise<void> {
    const confirmed = this.host.confirm();
    const before = this.#expiresAt;
    const generation = this.#generation;
    this.host.publishRaw(this.reply, WPI);
    this.#expiresAt = now + this.ackWaitMs;
    return confirmed.catch((error: unknown) => {
      if (generation === this.#generation) this.#expiresAt = Math.min(this.#expiresAt, before);
      throw error;
    });
  }

  #ackAfter(sent: Promise<unknown>): Promise<void> {
    return sent.then(() => {
      const confirmed = this.host.confirm();
      this.host.publishRaw(this.reply, ACK);
      return confirmed;
    });
  }

  ack(): Promise<void> {
    const error = this.#begin();
    if (error !== undefined) return Promise.reject(error);
    const confirmed = this.host.confirm();
    this.host.publishRaw(this.reply, ACK);
    return confirmed;
  }

  retry(next: OutgoingMessage): Promise<void> {
    const error = this.#begin();
    if (error !== undefined) return Promise.reject(error);
    // Publish the next attempt first, then ack: a crash in between duplicates, never loses. The id
    // is this message's sequence, so a second try after a crash stores it once.
    return this.#ackAfter(this.host.send(this.queue, next.body, next.delayMs, `${this.queue}#${this.seq}`));
  }

  defer(delayMs: number): Promise<void> {
    const error = this.#begin();
    if (error !== undefined) return Promise.reject(error);
    // A new message with the same body: the delivery count starts again at 1.
    return this.#ackAfter(this.host.send(this.queue, this.body, delayMs, `${this.queue}#${this.seq}`));
  }

  deadLetter(record: DeadLetterRecord): Promise<void> {
    const error = this.#begin();
    if (error !== undefined) return Promise.reject(error);
    return this.#ackAfter(this.host.bury(this.queue, record, `${this.queue}!${this.seq}`));
  }

  extendLease(ms: number): Promise<void> {
    if (this.host.closed) return Promise.reject(new BrokerClosedError());
    const now = clock.now();
    if (this.#settled || now >= this.#expiresAt - LEASE_MARGIN_MS) return Promise.reject(new LeaseLostError());
    this.#deadline = Math.max(this.#deadline, now + ms);
    const confirmed = this.#touch(now);
    if (this.#deadline > this.#expiresAt) this.#keepAlive();
    return confirmed;
  }
}
