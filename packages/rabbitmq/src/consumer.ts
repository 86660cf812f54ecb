/**
 * consume() and its subscriptions: channels with prefetch, deliveries under the adapter's own
 * leases, channel rotation against `consumer_timeout`, pause and resume, and re-opening after a
 * reconnect. The deliveries and their settlements are in `delivery.ts`, ack proofs in
 * `internal/ack-proof.ts`.
 */
import {
  assertConsumeOptions,
  brokerClosedError,
  type ConsumeOptions,
  type Delivery,
  type Subscription,
  UnknownQueueError,
  withTimeout,
} from "@jobs/core/adapter";
import type { Channel, ConsumeMessage } from "amqplib";
import { wrap } from "./connection.js";
import { type DeliveryOwner, RabbitMQDelivery, type SettlementHost, type Slot } from "./delivery.js";
import { ack, closeProofs, delivered, failProofs, flushAcks, proof, requeue } from "./internal/ack-proof.js";
import { classicDeliveryCount, quorumDeliveryCount } from "./internal/messages.js";
import type { QueueNames } from "./internal/topology.js";

/** AMQP's `basic.qos` prefetch count is a 16-bit field. */
const MAX_PREFETCH = 65_535;

/** What consumers need from their broker. */
export interface ConsumerHost extends SettlementHost {
  /** Quorum work queues: RabbitMQ counts deliveries itself. */
  readonly quorum: boolean;
  readonly requestTimeoutMs: number;
  /** Move new deliveries to a fresh channel once the oldest one is this old; 0: never. */
  readonly rotateAfterMs: number;
  /** The RabbitMQ objects of a physical queue (throws `InvalidOptionsError` for a name RabbitMQ would refuse). */
  names(queue: string): QueueNames;
  /** Resolves once connected (waiting up to the request timeout). */
  ready(): Promise<unknown>;
  /** Warns if a job timeout may run past `consumer_timeout`. */
  checkJobTimeout(queue: string, jobTimeoutMs: number | undefined): void;
  /** A new channel on the current connection with the queue declared; undefined without a connection. */
  openChannel(names: QueueNames): Promise<Channel | undefined>;
  /** Reports an error the adapter recovered from. */
  reportError(error: unknown): void;
}

interface Consumer extends DeliveryOwner {
  readonly prefetch: number;
  readonly onDelivery: (delivery: Delivery) => void;
  readonly slots: Set<Slot>;
  current: Slot | undefined;
  /** A channel being opened: settled once it is the current one, retired or failed. */
  opening: Promise<unknown> | undefined;
  stopped: boolean;
  /** `Subscription.pause`: no channel consumes until `resume()`. */
  paused: boolean;
  /** Redeliveries from classic queues being republished with their count + 1, not yet acked (and proven). */
  readonly republishing: Set<Promise<void>>;
}

/** Every consumer of one broker instance. */
export class RabbitMQConsumers {
  readonly #host: ConsumerHost;
  readonly #active = new Set<Consumer>();
  /** Stopped consumers whose retired channels still drain. */
  readonly #stopped = new Set<Consumer>();
  #tick: NodeJS.Timeout | undefined;

  constructor(host: ConsumerHost) {
    this.#host = host;
  }

  /** `Broker.consume`: checks the options, then starts a consumer once connected (its first channel must open). */
  async consume(queue: string, options: ConsumeOptions, onDelivery: (delivery: Delivery) => void): Promise<Subscription> {
    const host = this.#host;
    if (host.closed) throw brokerClosedError("rabbitmq");
    assertConsumeOptions(options, MAX_PREFETCH);
    const names = host.names(queue);
    host.checkJobTimeout(queue, options.jobTimeoutMs);
    try {
      await host.ready();
      return await this.#start(names, options, onDelivery);
    } catch (error) {
      // The first subscription must work (a missing queue with declare: false, refused arguments, no connection).
      if ((error as { code?: unknown })?.code === 404)
        throw new UnknownQueueError(queue, `[jobs] [rabbitmq] queue "${names.work}" does not exist`);
      throw wrap(error);
    }
  }

  /** Starts a consumer; resolves with its subscription, or rejects with why its first channel failed. */
  async #start(names: QueueNames, options: ConsumeOptions, onDelivery: (delivery: Delivery) => void): Promise<Subscription> {
    const consumer: Consumer = {
      names,
      prefetch: options.prefetch,
      leaseMs: options.leaseMs,
      onDelivery,
      slots: new Set(),
      current: undefined,
      opening: undefined,
      stopped: false,
      paused: false,
      republishing: new Set(),
    };
    this.#active.add(consumer);
    this.#armTick();
    const error = await this.#open(consumer, true);
    if (error !== undefined) {
      this.#active.delete(consumer);
      throw error;
    }
    return {
      stop: async () => {
        if (consumer.stopped) return;
        consumer.stopped = true;
        this.#active.delete(consumer);
        // Its retired channels still drain: the tick keeps expiring their leases and closes them when empty.
        this.#stopped.add(consumer);
        const slot = consumer.current;
        consumer.current = undefined;
        if (slot !== undefined) await this.#retire(slot);
      },
      pause: () => this.#pause(consumer),
      resume: () => {
        if (!consumer.paused) return;
        consumer.paused = false;
        void this.#open(consumer, false);
      },
    };
  }

  /**
   * `Subscription.pause`: cancels the consumer on every channel (`basic.cancel`) and resolves once
   * RabbitMQ answered each cancel. RabbitMQ sends every delivery of a consumer before its
   * `cancel-ok` on the same channel, and none after, so once this resolves every delivery it will
   * ever send these channels has been handed out (or republished, on classic queues). The channels stay open: deliveries held on them
   * are settled there as usual, and each closes once it holds none (as after a rotation). No
   * channel consumes again until `resume()`, not even after a reconnect.
   */
  async #pause(consumer: Consumer): Promise<void> {
    if (consumer.stopped) return;
    consumer.paused = true;
    // A channel being opened now retires itself once its consumer is on (see `#open`).
    while (consumer.opening !== undefined) await consumer.opening;
    if (!consumer.paused) return;
    consumer.current = undefined;
    await Promise.all(Array.from(consumer.slots, (slot) => this.#retire(slot)));
    // A redelivery being republished is held here too: a crash between its republish and its ack
    // would leave two copies, so the pause also waits for those already received.
    while (consumer.republishing.size > 0) await Promise.all(consumer.republishing);
  }

  /** A new connection: every consumer opens a channel on it. */
  resume(): void {
    for (const consumer of this.#active) void this.#open(consumer, false);
  }

  /** The connection died: every channel with it (their deliveries go back to the queues). */
  lost(): void {
    for (const consumer of this.#active) for (const slot of consumer.slots) this.#slotDead(consumer, slot);
  }

  /**
   * The broker closes: no consumer receives anything more. Acks still waiting for proof wait for
   * the close: `closed(true)` once RabbitMQ answered it, `closed(false)` if it did not.
   * `channels`: close the consumers' channels here (a borrowed connection stays open), which puts
   * their unsettled deliveries back in the queues and proves the acks sent on them.
   */
  async close(channels: boolean): Promise<(clean: boolean) => void> {
    if (this.#tick !== undefined) clearInterval(this.#tick);
    const slots: Slot[] = [];
    for (const consumer of [...this.#active, ...this.#stopped]) {
      consumer.stopped = true;
      for (const slot of consumer.slots) {
        if (slot.dead) continue;
        // Acks counted as sent must be on the wire before the close that proves them.
        flushAcks(slot);
        slot.closing = true;
        slots.push(slot);
        this.#slotDead(consumer, slot);
      }
    }
    this.#active.clear();
    this.#stopped.clear();
    if (channels) {
      await Promise.all(
        slots.map((slot) =>
          withTimeout(slot.channel.close(), this.#host.requestTimeoutMs).then(
            () => closeProofs(slot, true),
            () => closeProofs(slot, false),
          ),
        ),
      );
    }
    return (clean) => {
      for (const slot of slots) if (slot.closing) closeProofs(slot, clean);
    };
  }

  /** Unsettled deliveries this instance holds from the queue. */
  active(names: QueueNames): number {
    let active = 0;
    for (const c of [...this.#active, ...this.#stopped]) {
      if (c.names === names) for (const slot of c.slots) active += slot.held.size;
    }
    return active;
  }

  /**
   * Opens the consumer's current channel: prefetch minus what retired channels still hold.
   * Resolves with the error if the channel or consumer could not be opened (the tick tries again).
   */
  #open(consumer: Consumer, first: boolean): Promise<unknown> {
    if (consumer.stopped || consumer.paused || consumer.current !== undefined || consumer.opening !== undefined || this.#host.closed)
      return Promise.resolve(undefined);
    let held = 0;
    for (const slot of consumer.slots) held += slot.held.size;
    if (held >= consumer.prefetch) return Promise.resolve(undefined);
    const opening = this.#openChannel(consumer, held, first).finally(() => {
      consumer.opening = undefined;
    });
    consumer.opening = opening;
    return opening;
  }

  async #openChannel(consumer: Consumer, held: number, first: boolean): Promise<unknown> {
    try {
      const channel = await this.#host.openChannel(consumer.names);
      if (channel === undefined) return first ? new Error("not connected") : undefined;
      const slot: Slot = {
        channel,
        held: new Set(),
        tag: undefined,
        retired: false,
        retiring: undefined,
        cancelling: false,
        dead: false,
        prefetch: consumer.prefetch - held,
        sent: 0,
        received: 0,
        proven: 0,
        waiting: [],
        open: undefined,
        qos: false,
        timer: undefined,
        closing: false,
        unsettled: new Set(),
        acks: [],
        flushed: 0,
      };
      channel.on("error", () => {});
      channel.on("close", () => this.#slotDead(consumer, slot));
      consumer.slots.add(slot);
      await channel.prefetch(slot.prefetch);
      const { consumerTag } = await channel.consume(consumer.names.work, (msg) => this.#receive(consumer, slot, msg), { noAck: false });
      slot.tag = consumerTag;
      if (consumer.stopped || consumer.paused || this.#host.closed) await this.#retire(slot);
      else consumer.current = slot;
    } catch (error) {
      this.#host.reportError(error);
      return error;
    }
    return undefined;
  }

  #receive(consumer: Consumer, slot: Slot, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // Cancelled by the server (queue deleted): the tick opens a new channel, declaring it again.
      if (consumer.current === slot) consumer.current = undefined;
      slot.retired = true;
      return;
    }
    if (slot.dead) return;
    delivered(slot);
    slot.unsettled.add(msg.fields.deliveryTag);
    if (consumer.stopped) {
      requeue(slot, msg, false);
      return;
    }
    const headers = msg.properties.headers;
    let count: number;
    if (this.#host.quorum) count = quorumDeliveryCount(headers);
    else {
      count = classicDeliveryCount(headers);
      if (msg.fields.redelivered) {
        // Classic queues only flag a redelivery: republish it with its count + 1, then ack this copy.
        const p = msg.properties;
        const republish = this.#host
          .send(consumer.names, msg.content.toString("utf8"), p.priority ?? 0, 0, count + 1)
          .then(
            () => {
              if (slot.dead) return;
              ack(slot, msg);
              return proof(slot);
            },
            (error: unknown) => {
              this.#host.reportError(error);
              if (!slot.dead) requeue(slot, msg, false);
            },
          )
          .catch(() => {
            // The channel closed before the ack was proven: the copy left comes back flagged again.
          })
          .finally(() => consumer.republishing.delete(republish));
        consumer.republishing.add(republish);
        return;
      }
    }
    const delivery = new RabbitMQDelivery(this.#host, consumer, slot, msg, count);
    slot.held.add(delivery);
    try {
      consumer.onDelivery(delivery);
    } catch (error) {
      this.#host.reportError(error);
    }
  }

  #slotDead(consumer: Consumer, slot: Slot): void {
    if (slot.dead) return;
    slot.dead = true;
    consumer.slots.delete(slot);
    for (const d of slot.held) if (d.state === "open" || d.state === "settling") d.state = "lost";
    slot.held.clear();
    if (!slot.closing) failProofs(slot);
    if (consumer.current === slot) consumer.current = undefined;
  }

  /** Cancels the channel's consumer; resolves once RabbitMQ answered (or the channel failed). */
  #retire(slot: Slot): Promise<void> {
    if (slot.retiring !== undefined) return slot.retiring;
    if (slot.retired || slot.dead) return Promise.resolve();
    slot.retired = true;
    const tag = slot.tag;
    if (tag === undefined) {
      slot.retiring = Promise.resolve();
      return slot.retiring;
    }
    slot.cancelling = true;
    const done = (): void => {
      slot.cancelling = false;
    };
    slot.retiring = withTimeout(slot.channel.cancel(tag), this.#host.requestTimeoutMs).then(done, () => {
      // The channel is going away anyway; its deliveries go back to the queue.
      done();
    });
    return slot.retiring;
  }

  #armTick(): void {
    if (this.#tick !== undefined) return;
    let shortest = Number.POSITIVE_INFINITY;
    for (const c of this.#active) shortest = Math.min(shortest, c.leaseMs);
    const period = Math.min(250, Math.max(5, Math.floor(shortest / 10)));
    this.#tick = setInterval(() => this.#onTick(), period);
    this.#tick.unref();
  }

  /** Expires leases, rotates channels that hold an old delivery, closes drained ones, re-opens consumers. */
  #onTick(): void {
    const now = Date.now();
    for (const consumer of this.#active) this.#tickConsumer(consumer, now);
    for (const consumer of this.#stopped) this.#tickConsumer(consumer, now);
  }

  #tickConsumer(consumer: Consumer, now: number): void {
    for (const slot of consumer.slots) {
      for (const d of slot.held) {
        if (d.state !== "open" || d.deadline > now) continue;
        // Lease expired: back to the queue (counted: flagged `redelivered` on classic queues, x-delivery-count on quorum).
        d.state = "lost";
        slot.held.delete(d);
        if (!slot.dead) requeue(slot, d.msg, true);
      }
      if (slot === consumer.current && this.#host.rotateAfterMs > 0) {
        const oldest = slot.held.values().next().value as RabbitMQDelivery | undefined;
        if (oldest !== undefined && now - oldest.receivedAt > this.#host.rotateAfterMs) {
          consumer.current = undefined;
          void this.#retire(slot);
        }
      }
      if (
        slot.retired &&
        !slot.cancelling &&
        slot.held.size === 0 &&
        // A redelivery being republished is not held, but its ack is still to come.
        slot.unsettled.size === 0 &&
        !slot.dead &&
        slot.waiting.length === 0 &&
        !slot.qos &&
        slot.acks.length === 0
      ) {
        slot.dead = true;
        consumer.slots.delete(slot);
        slot.channel.close().catch(() => {});
      }
    }
    if (consumer.stopped) {
      if (consumer.slots.size === 0) this.#stopped.delete(consumer);
    } else if (consumer.current === undefined) void this.#open(consumer, false);
  }
}
