/**
 * Consumers: channels with prefetch, deliveries under the adapter's own leases, settlements, the
 * ack proof, channel rotation against `consumer_timeout`, and re-opening after a reconnect.
 */
import { BrokerClosedError } from "@jobs/core";
import {
  type ConsumeOptions,
  type DeadLetterRecord,
  type Delivery,
  LeaseLostError,
  type OutgoingMessage,
  redact,
  type Subscription,
} from "@jobs/core/adapter";
import type { Channel, ConsumeMessage } from "amqplib";
import { classicDeliveryCount, quorumDeliveryCount } from "./messages.js";
import type { QueueNames } from "./topology.js";
import { withTimeout } from "./util.js";

/**
 * How long acks wait for a delivery to prove them before a `basic.qos` round trip does. With a
 * backlog the next delivery comes sooner; a queue that ran dry pays this once per burst.
 */
const PROOF_FALLBACK_MS = 5;

/** What consumers need from their broker. */
export interface ConsumerHost {
  readonly closed: boolean;
  /** Quorum work queues: RabbitMQ counts deliveries itself. */
  readonly quorum: boolean;
  readonly requestTimeoutMs: number;
  /** Move new deliveries to a fresh channel once the oldest one is this old; 0: never. */
  readonly rotateAfterMs: number;
  /** A new channel on the current connection with the queue declared; undefined without a connection. */
  openChannel(names: QueueNames): Promise<Channel | undefined>;
  /** Publishes one message (confirmed) for a settlement. */
  send(names: QueueNames, body: string, priority: number, delayMs: number, count: number | undefined): Promise<void>;
  /** Stores a dead letter (confirmed). */
  sendDead(names: QueueNames, record: DeadLetterRecord): Promise<void>;
  /** Reports an error the adapter recovered from. */
  reportError(error: unknown): void;
}

/** Acks sent in one event-loop turn: resolved together once RabbitMQ has processed the last of them. */
interface Proof {
  /** Index (in `Slot.sent`) of its last settlement. */
  upTo: number;
  /** When its first ack was sent (`performance.now()`). */
  readonly at: number;
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/** One channel a consumer receives on; retired channels only drain. */
interface Slot {
  readonly channel: Channel;
  readonly held: Set<RabbitDelivery>;
  tag: string | undefined;
  retired: boolean;
  /** The `basic.cancel` of a retired channel: settled once RabbitMQ answered it (or it failed). */
  retiring: Promise<void> | undefined;
  /** Its `basic.cancel` waits for the answer: closing it now could requeue deliveries still on their way. */
  cancelling: boolean;
  dead: boolean;
  /** Its consumer's prefetch: RabbitMQ never has more unsettled deliveries out on it. */
  readonly prefetch: number;
  /** Settlements (ack, nack, reject) sent on the channel. */
  sent: number;
  /** Deliveries received on the channel. */
  received: number;
  /** Settlements RabbitMQ is known to have processed. */
  proven: number;
  /** Acks waiting for proof, oldest first. */
  readonly waiting: Proof[];
  /** The proof of the current event-loop turn, still taking acks. */
  open: Proof | undefined;
  /** A `basic.qos` proof is in flight. */
  qos: boolean;
  timer: NodeJS.Timeout | undefined;
  /** The broker is closing it: its proofs wait for the outcome of the close. */
  closing: boolean;
  /** Delivery tags received on the channel and not yet settled (pending acks included). */
  readonly unsettled: Set<number>;
  /** Acks of this event-loop turn, not yet written: sent together at its end (see `flushAcks`). */
  acks: ConsumeMessage[];
  /** `sent` when acks were last written. */
  flushed: number;
}

interface Consumer {
  readonly names: QueueNames;
  readonly prefetch: number;
  readonly leaseMs: number;
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

/**
 * Resolves once RabbitMQ has processed every settlement sent on the channel so far, so that an ack
 * that resolved is never followed by a redelivery. AMQP acks have no reply; two things prove them:
 *
 * - A delivery. RabbitMQ never has more than `prefetch` unsettled deliveries out to a consumer, so
 *   sending delivery number d means it had processed at least d − prefetch settlements (in channel
 *   order). With a backlog, every ack is proven by a later delivery at no cost.
 * - A `basic.qos` that changes nothing, answered after every method sent before it, when no
 *   delivery proved the acks within `PROOF_FALLBACK_MS` (a queue that ran dry, a retired channel).
 *
 * Acks of one event-loop turn share one promise.
 */
function proof(slot: Slot): Promise<void> {
  let group = slot.open;
  if (group === undefined) {
    let resolve!: () => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    group = { upTo: slot.sent, at: performance.now(), promise, resolve, reject };
    slot.open = group;
    slot.waiting.push(group);
    // Sealed once the turn's microtasks have run (a nextTick queued now runs after them).
    process.nextTick(seal, slot, group);
  }
  group.upTo = slot.sent;
  return group.promise;
}

function seal(slot: Slot, group: Proof): void {
  if (slot.open === group) slot.open = undefined;
  armFallback(slot);
}

/**
 * Resolves the proofs of every settlement up to `slot.proven`. The fallback timer is left to run
 * out (it does nothing then): arming and clearing one per turn cost more than the proof itself.
 */
function flush(slot: Slot): void {
  const waiting = slot.waiting;
  while (waiting.length > 0 && (waiting[0] as Proof).upTo <= slot.proven) {
    const group = waiting.shift() as Proof;
    if (slot.open === group) slot.open = undefined;
    group.resolve();
  }
}

/** One timer per channel at most: it fires `PROOF_FALLBACK_MS` after the oldest unproven ack, or again later. */
function armFallback(slot: Slot): void {
  if (slot.waiting.length === 0 || slot.timer !== undefined || slot.qos || slot.dead) return;
  slot.timer = setTimeout(fallback, PROOF_FALLBACK_MS, slot);
}

function fallback(slot: Slot): void {
  if (slot.waiting.length === 0 || slot.qos || slot.dead) {
    slot.timer = undefined;
    return;
  }
  const wait = (slot.waiting[0] as Proof).at + PROOF_FALLBACK_MS - performance.now();
  if (wait >= 1) {
    slot.timer = setTimeout(fallback, wait, slot);
    return;
  }
  // One more poll of the socket first: a proving delivery may already be there.
  setImmediate(() => {
    slot.timer = undefined;
    if (slot.waiting.length > 0 && !slot.qos && !slot.dead) sendQos(slot);
  });
}

function sendQos(slot: Slot): void {
  flushAcks(slot);
  slot.qos = true;
  const upTo = slot.sent;
  slot.channel.prefetch(slot.prefetch).then(
    () => {
      slot.qos = false;
      if (upTo > slot.proven) slot.proven = upTo;
      flush(slot);
      armFallback(slot);
    },
    () => {
      slot.qos = false;
      if (!slot.closing) failProofs(slot);
    },
  );
}

/** The channel closed: nothing more can be proven (the broker requeues what it had not processed). */
function failProofs(slot: Slot): void {
  if (slot.timer !== undefined) clearTimeout(slot.timer);
  slot.timer = undefined;
  slot.open = undefined;
  for (const group of slot.waiting.splice(0)) {
    group.reject(new LeaseLostError("[jobs] [rabbitmq] the channel closed before the ack was confirmed; the message will be redelivered"));
  }
}

/** A clean close (close-ok) proves every settlement sent before it: RabbitMQ answers it after processing them. */
function closeProofs(slot: Slot, clean: boolean): void {
  slot.closing = false;
  if (!clean) {
    failProofs(slot);
    return;
  }
  slot.proven = slot.sent;
  flush(slot);
}

/** A delivery arrived: it proves settlements up to `received − prefetch`. */
function delivered(slot: Slot): void {
  slot.received++;
  const known = Math.min(slot.received - slot.prefetch, slot.sent);
  if (known > slot.proven) {
    slot.proven = known;
    if (slot.waiting.length > 0) flush(slot);
  }
}

/**
 * Acks a delivery at the end of the event-loop turn. It counts as sent at once: nothing else is
 * written on the channel before it (`flushAcks` runs first), so batches stay in count order.
 */
function ack(slot: Slot, msg: ConsumeMessage): void {
  if (slot.acks.length === 0) process.nextTick(flushAcks, slot);
  slot.acks.push(msg);
  slot.sent++;
}

/**
 * Writes the turn's acks. Those below every other unsettled delivery of the channel go as one
 * `basic.ack` with `multiple` (it settles exactly them: everything before is settled already),
 * the rest one by one. One frame instead of one per job saves RabbitMQ and this process CPU per job.
 * Throws nothing: on a closed channel the acks are lost, and their proofs fail with the channel.
 */
function flushAcks(slot: Slot): void {
  const acks = slot.acks;
  if (acks.length === 0) return;
  slot.acks = [];
  // The batch leaves in another order than it was counted (the multiple ack last): a proof must
  // cover it whole, so every proof ending inside it ends at its end. RabbitMQ processes frames in
  // wire order, so a count that reaches the batch's end covers every frame in it.
  const end = slot.sent;
  const waiting = slot.waiting;
  for (let i = waiting.length - 1; i >= 0 && (waiting[i] as Proof).upTo > slot.flushed; i--) (waiting[i] as Proof).upTo = end;
  slot.flushed = end;
  if (slot.dead) return;
  const unsettled = slot.unsettled;
  for (const msg of acks) unsettled.delete(msg.fields.deliveryTag);
  let floor = Number.POSITIVE_INFINITY;
  for (const tag of unsettled) if (tag < floor) floor = tag;
  try {
    let last: ConsumeMessage | undefined;
    for (const msg of acks) {
      const tag = msg.fields.deliveryTag;
      if (tag < floor) {
        if (last === undefined || tag > last.fields.deliveryTag) last = msg;
      } else slot.channel.ack(msg);
    }
    if (last !== undefined) slot.channel.ack(last, true);
  } catch {
    // The channel closed: the broker requeues what was not acked; the close fails the proofs.
  }
}

/** Back to the queue. `reject` (not `nack`): RabbitMQ 4.3+ counts it as a failed delivery against `x-delivery-limit`. */
function requeue(slot: Slot, msg: ConsumeMessage, failed: boolean): void {
  flushAcks(slot);
  slot.unsettled.delete(msg.fields.deliveryTag);
  if (failed) slot.channel.reject(msg, true);
  else slot.channel.nack(msg, false, true);
  slot.sent++;
}

class RabbitDelivery implements Delivery {
  readonly body: string;
  deadline: number;
  readonly receivedAt: number;
  /** `open` until settled, lost (lease, channel) or closed. */
  state: "open" | "settling" | "done" | "lost" = "open";

  constructor(
    private readonly host: ConsumerHost,
    readonly consumer: Consumer,
    readonly slot: Slot,
    readonly msg: ConsumeMessage,
    readonly deliveryCount: number,
  ) {
    this.body = msg.content.toString("utf8");
    this.receivedAt = Date.now();
    this.deadline = this.receivedAt + consumer.leaseMs;
  }

  #check(): Error | undefined {
    if (this.host.closed) return new BrokerClosedError("[jobs] [rabbitmq] broker is closed; the delivery went back to its queue");
    if (this.state !== "open" || this.slot.dead) return new LeaseLostError();
    return undefined;
  }

  /** Acks on the delivery's channel; the delivery is done whatever happens. */
  #finish(): Error | undefined {
    this.state = "done";
    this.slot.held.delete(this);
    if (this.slot.dead) return new LeaseLostError();
    try {
      ack(this.slot, this.msg);
    } catch (error) {
      return new LeaseLostError(`[jobs] [rabbitmq] the delivery's channel closed before its ack: ${redact(String(error))}`);
    }
    return undefined;
  }

  /** Publishes first (confirmed), then acks: a crash in between duplicates, never loses. */
  async #replace(publish: () => Promise<void>): Promise<void> {
    const error = this.#check();
    if (error !== undefined) throw error;
    this.state = "settling";
    try {
      await publish();
    } catch (e) {
      if (this.state === "settling") this.state = "open";
      throw e;
    }
    if (this.state !== "settling") throw this.host.closed ? new BrokerClosedError() : new LeaseLostError();
    const ackError = this.#finish();
    if (ackError !== undefined) throw ackError;
    await proof(this.slot);
  }

  ack(): Promise<void> {
    const error = this.#check() ?? this.#finish();
    return error === undefined ? proof(this.slot) : Promise.reject(error);
  }

  retry(next: OutgoingMessage): Promise<void> {
    return this.#replace(() => this.host.send(this.consumer.names, next.body, next.priority, next.delayMs, undefined));
  }

  defer(delayMs: number): Promise<void> {
    const p = this.msg.properties;
    return this.#replace(() => this.host.send(this.consumer.names, this.body, p.priority ?? 0, delayMs, undefined));
  }

  deadLetter(record: DeadLetterRecord): Promise<void> {
    return this.#replace(() => this.host.sendDead(this.consumer.names, record));
  }

  extendLease(ms: number): Promise<void> {
    const error = this.#check();
    if (error !== undefined && !(this.state === "settling" && !this.host.closed)) return Promise.reject(error);
    this.deadline = Date.now() + ms;
    return Promise.resolve();
  }
}

/** Every consumer of one broker instance. */
export class Consumers {
  readonly #host: ConsumerHost;
  readonly #active = new Set<Consumer>();
  /** Stopped consumers whose retired channels still drain. */
  readonly #stopped = new Set<Consumer>();
  #tick: NodeJS.Timeout | undefined;

  constructor(host: ConsumerHost) {
    this.#host = host;
  }

  /** Starts a consumer; resolves with its subscription, or rejects with why its first channel failed. */
  async start(names: QueueNames, options: ConsumeOptions, onDelivery: (delivery: Delivery) => void): Promise<Subscription> {
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
          withTimeout(slot.channel.close(), this.#host.requestTimeoutMs, "close a channel").then(
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
    const delivery = new RabbitDelivery(this.#host, consumer, slot, msg, count);
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
    slot.retiring = withTimeout(slot.channel.cancel(tag), this.#host.requestTimeoutMs, "cancel a consumer").then(done, () => {
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
        const oldest = slot.held.values().next().value as RabbitDelivery | undefined;
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
