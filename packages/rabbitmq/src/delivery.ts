/** A delivery from a consumer's channel and its settlements (ack, retry, defer, dead letter, lease). */
import {
  BrokerClosedError,
  brokerClosedError,
  type DeadLetterRecord,
  type Delivery,
  LeaseLostError,
  type OutgoingMessage,
  redact,
} from "@jobs/core/adapter";
import type { ConsumeMessage } from "amqplib";
import { type AckChannel, ack, proof } from "./internal/ack-proof.js";
import type { QueueNames } from "./internal/topology.js";

/** What settlements need from the broker. */
export interface SettlementHost {
  readonly closed: boolean;
  /** Publishes one message (confirmed) for a settlement. */
  send(names: QueueNames, body: string, priority: number, delayMs: number, count: number | undefined): Promise<void>;
  /** Stores a dead letter (confirmed). */
  sendDead(names: QueueNames, record: DeadLetterRecord): Promise<void>;
}

/** What a delivery needs from its consumer. */
export interface DeliveryOwner {
  readonly names: QueueNames;
  readonly leaseMs: number;
}

/** One channel a consumer receives on; retired channels only drain. */
export interface Slot extends AckChannel {
  readonly held: Set<RabbitMQDelivery>;
  tag: string | undefined;
  retired: boolean;
  /** The `basic.cancel` of a retired channel: settled once RabbitMQ answered it (or it failed). */
  retiring: Promise<void> | undefined;
  /** Its `basic.cancel` waits for the answer: closing it now could requeue deliveries still on their way. */
  cancelling: boolean;
}

export class RabbitMQDelivery implements Delivery {
  readonly body: string;
  deadline: number;
  readonly receivedAt: number;
  /** `open` until settled, lost (lease, channel) or closed. */
  state: "open" | "settling" | "done" | "lost" = "open";

  constructor(
    private readonly host: SettlementHost,
    readonly consumer: DeliveryOwner,
    readonly slot: Slot,
    readonly msg: ConsumeMessage,
    readonly deliveryCount: number,
  ) {
    this.body = msg.content.toString("utf8");
    this.receivedAt = Date.now();
    this.deadline = this.receivedAt + consumer.leaseMs;
  }

  #check(): Error | undefined {
    if (this.host.closed) return brokerClosedError("rabbitmq", "the delivery went back to its queue");
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
