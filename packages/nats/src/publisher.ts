/**
 * Publishing with a PubAck: enqueues (publish()), and the re-publishes of retry, defer, dead
 * letters and the delay scheduler. One reply subscription and one timeout sweep serve them all.
 */
import {
  BrokerClosedError,
  BrokerConnectionError,
  clock,
  type DeadLetterRecord,
  EnqueueOutcomeUnknownError,
  type JobsError,
  type OutgoingMessage,
  type PublishOutcome,
  payloadTooLarge,
  serializeError,
  UnknownQueueError,
} from "@jobs/core/adapter";
import { createInbox, headers, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { connectionError } from "./connection.js";
import { DUE, ERROR, FAILED_AT, REASON, type Subjects } from "./internal/topology.js";
import type { NatsSettings } from "./options.js";

/** What the publisher needs of the connection. */
export interface PublisherLink {
  readonly closed: boolean;
  readonly connected: boolean;
  readonly up: boolean;
  readonly nc: NatsConnection;
  open(): Promise<NatsConnection>;
}

interface Pending {
  resolve(duplicate: boolean): void;
  reject(error: JobsError): void;
  readonly at: number;
  readonly subject: string;
  readonly queue: string;
}

/** The longest close() waits for the PubAcks of publishes already sent. */
const CLOSE_WAIT_MS = 2_000;

export class NatsPublisher {
  readonly #link: PublisherLink;
  readonly #subjects: Subjects;
  readonly #settings: NatsSettings;
  readonly #pending = new Map<string, Pending>();
  readonly #replies = `${createInbox()}.`;
  #requests = 0;
  #sweeper: NodeJS.Timeout | undefined;
  #replySub: Subscription | undefined;

  constructor(link: PublisherLink, subjects: Subjects, settings: NatsSettings) {
    this.#link = link;
    this.#subjects = subjects;
    this.#settings = settings;
  }

  /** Subscribes the PubAck inbox and starts the timeout sweep (once connected). */
  attach(nc: NatsConnection): void {
    this.#replySub = nc.subscribe(`${this.#replies}*`, { callback: (_error, msg) => this.#reply(msg) });
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(1_000, this.#settings.requestTimeoutMs));
    this.#sweeper.unref();
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<PublishOutcome[]> {
    this.#subjects.of(queue);
    if (!this.#link.up || this.#link.closed) await this.#link.open();
    const { maxPayloadBytes, dedupeWindowMs } = this.#settings.capabilities;
    const dedupe = dedupeWindowMs > 0;
    return Promise.all(
      messages.map((m): Promise<PublishOutcome> | PublishOutcome => {
        const tooLarge = payloadTooLarge(m.body, maxPayloadBytes);
        if (tooLarge !== undefined) return { ok: false, error: tooLarge };
        // Enqueues with a caller-chosen id dedupe per queue by it (Nats-Msg-Id). An id core generated
        // can only repeat if this publish were sent twice, which nats.js never does on its own (a
        // publish written before a disconnect is not written again), so it goes without the header:
        // the server keeps no duplicate-window entry for it and both sides parse a plain MSG.
        // Retries and requeues (dedupe: false) carry no id either.
        const msgId = m.dedupe && dedupe && m.generatedId !== true ? `${queue}:${m.id}` : undefined;
        return this.send(queue, m.body, m.delayMs, msgId).then(
          (duplicate) => ({ ok: true, duplicate }),
          (error: JobsError) => ({ ok: false, error }),
        );
      }),
    );
  }

  /** Publishes one message to the ready or delayed subject of `queue`; `msgId` makes it idempotent. */
  send(queue: string, body: string | Uint8Array, delayMs: number, msgId: string | undefined): Promise<boolean> {
    const names = this.#subjects.of(queue);
    let hdrs: MsgHdrs | undefined;
    if (msgId !== undefined || delayMs > 0) {
      hdrs = headers();
      if (msgId !== undefined) hdrs.set("Nats-Msg-Id", msgId);
      if (delayMs > 0) hdrs.set(DUE, String(Date.now() + delayMs));
    }
    return this.#request(delayMs > 0 ? names.delayed : names.ready, body, hdrs, queue);
  }

  /** Stores a dead letter: the body as data, the failure in headers. */
  bury(queue: string, record: DeadLetterRecord, msgId: string): Promise<boolean> {
    const hdrs = headers();
    hdrs.set("Nats-Msg-Id", msgId);
    hdrs.set(REASON, record.reason);
    hdrs.set(FAILED_AT, String(record.failedAt));
    hdrs.set(ERROR, JSON.stringify(record.error));
    return this.#request(this.#subjects.of(queue).dead, record.body, hdrs, queue);
  }

  /**
   * Publishes with a reply subject of our own inbox and resolves with the PubAck's `duplicate`.
   * nats.js `request()` would build two Error objects (with stack traces) and a timer per call,
   * most of a publish's CPU time.
   */
  #request(subject: string, body: string | Uint8Array, hdrs: MsgHdrs | undefined, queue: string): Promise<boolean> {
    const link = this.#link;
    if (!link.connected) return Promise.reject(new BrokerConnectionError("[jobs] [nats] not connected (reconnecting); nothing was sent"));
    const nc = link.nc;
    return new Promise<boolean>((resolve, reject) => {
      const id = (++this.#requests).toString(36);
      try {
        nc.publish(subject, body, hdrs === undefined ? { reply: this.#replies + id } : { reply: this.#replies + id, headers: hdrs });
      } catch (error) {
        reject(link.closed ? new BrokerClosedError() : connectionError(`publish to "${subject}" not sent`, error));
        return;
      }
      this.#pending.set(id, { resolve, reject, at: clock.now(), subject, queue });
    });
  }

  #reply(msg: Msg): void {
    const id = msg.subject.slice(this.#replies.length);
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    const { subject, queue } = pending;
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      pending.reject(
        new UnknownQueueError(
          queue,
          `[jobs] [nats] no JetStream stream captures "${subject}" (is stream "${this.#settings.stream}" deleted?); nothing was stored`,
        ),
      );
      return;
    }
    let ack: { duplicate?: boolean; error?: { code?: number; description?: string } };
    try {
      ack = JSON.parse(msg.string()) as typeof ack;
    } catch (error) {
      pending.reject(new EnqueueOutcomeUnknownError(`[jobs] [nats] unreadable PubAck for "${subject}"`, { cause: serializeError(error) }));
      return;
    }
    if (ack.error === undefined) pending.resolve(ack.duplicate === true);
    else if (ack.error.code === 503)
      pending.reject(new UnknownQueueError(queue, `[jobs] [nats] no JetStream stream captures "${subject}" (${ack.error.description})`));
    else pending.reject(new BrokerConnectionError(`[jobs] [nats] JetStream refused the publish to "${subject}": ${ack.error.description}`));
  }

  /** Rejects publishes older than requestTimeout (the map is in publish order, so the scan stops at the first young one). */
  #sweep(): void {
    const timeoutMs = this.#settings.requestTimeoutMs;
    const limit = clock.now() - timeoutMs;
    for (const [id, pending] of this.#pending) {
      if (pending.at > limit) break;
      this.#pending.delete(id);
      pending.reject(new EnqueueOutcomeUnknownError(`[jobs] [nats] no PubAck for "${pending.subject}" within ${timeoutMs} ms`));
    }
  }

  /** The connection dropped: publishes waiting for their PubAck will not get one. */
  lost(): void {
    this.#failPending(new EnqueueOutcomeUnknownError("[jobs] [nats] connection lost before the PubAck arrived"));
  }

  #failPending(error: JobsError): void {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    for (const pending of all) pending.reject(error);
  }

  /** The first step of close(): no more sweeps. */
  stop(): void {
    clearInterval(this.#sweeper);
  }

  /** Publishes already sent get their PubAck (bounded); the rest have an unknown outcome. */
  async close(): Promise<void> {
    const deadline = clock.now() + Math.min(this.#settings.requestTimeoutMs, CLOSE_WAIT_MS);
    while (this.#pending.size > 0 && this.#link.connected && clock.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    this.#failPending(new EnqueueOutcomeUnknownError("[jobs] [nats] broker closed before the PubAck arrived"));
    this.#replySub?.unsubscribe();
  }
}
