/**
 * The Broker contract: what an adapter implements. It is deliberately small: move opaque message
 * bodies durably, hand them out under a lease, and settle them. Every policy (retries, backoff,
 * timeouts, validation, runAt checks, priority emulation, events) lives in core.
 */
import type { LocalEnvelope } from "./envelope.js";
import type { JobsError, SerializedError } from "./errors.js";
import type { PriorityLevel } from "./priority.js";
import type { ClaimOutcome, FinishRequest, JobStore } from "./store.js";

/**
 * What a broker does natively and its limits, declared as data (an exported constant per adapter).
 * `maxDelayMs` must be at least 1000: core holds longer delays by re-delaying on receipt.
 */
export interface BrokerCapabilities {
  /**
   * `native`: the broker orders ready messages by `OutgoingMessage.priority` within one queue.
   * `none`: core emulates priority with one physical queue per level, consumed highest first.
   */
  readonly priority: "native" | "none";
  /** Longest delay the broker holds natively, in ms; core re-delays longer ones on receipt. `Infinity`: no limit. */
  readonly maxDelayMs: number;
  /** Largest message body the broker accepts, in bytes (UTF-8). */
  readonly maxPayloadBytes: number;
  /** Window in ms within which a second publish with the same id is ignored; 0 means no dedupe. */
  readonly dedupeWindowMs: number;
  /** `Delivery.extendLease` really extends the lease (heartbeats keep long jobs). */
  readonly leaseExtension: boolean;
  /** Accepted messages survive a broker restart. */
  readonly durable: boolean;
  /** A message keeps being redelivered when its consumer's connection closes or it dies (not only on lease expiry). */
  readonly redeliverOnClose: boolean;
  /** Finest delay or lease granularity the broker honours, in ms; the conformance suite scales its time limits by it. */
  readonly timerResolutionMs: number;
  /**
   * `counts().active` includes deliveries held by every connection. `false`: the broker cannot
   * report unsettled deliveries (AMQP counts ready messages only), so `active` counts only this
   * instance's own. @default true
   */
  readonly exactActiveCount?: boolean;
  /**
   * `purge` removes delayed messages at once and leaves deliveries in flight settleable. `false`:
   * waiting and dead messages go at once, delayed ones (and, on SQS, deliveries in flight) only
   * within the broker's own purge delay (SQS PurgeQueue: up to 60 s). @default true
   */
  readonly exactPurge?: boolean;
}

/** A message to publish. The body is an encoded envelope; the other fields are what a broker needs to route it. */
export interface OutgoingMessage {
  /** Job id: the broker's dedupe key when `dedupeWindowMs > 0`. */
  readonly id: string;
  /** Encoded envelope (UTF-8 JSON text), opaque to the broker. */
  readonly body: string;
  /** Priority level; brokers with `priority: "native"` order by it, others ignore it (core routes instead). */
  readonly priority: PriorityLevel;
  /** Hold the message this long before it becomes ready; never more than `capabilities.maxDelayMs`. */
  readonly delayMs: number;
  /**
   * Drop this publish (outcome `duplicate: true`) if the id was published within the dedupe window.
   * True for enqueues; false for retries and requeues, which reuse the job id on purpose.
   */
  readonly dedupe: boolean;
  /**
   * Core generated the id (a random UUID: the caller chose none), so no other enqueue carries it
   * and only a second send of this very publish could repeat it. A broker whose client never sends
   * a publish twice on its own may skip its dedupe window for such messages (no per-message dedupe
   * state); one whose client may re-send (after a reconnect, on a retried request) must dedupe
   * them as usual. Absent means false.
   */
  readonly generatedId?: boolean;
  /**
   * The body pre-split (fields + payload JSON), when core has it. A broker that keeps messages
   * in this process may hand it back as `Delivery.local` so core skips decoding; networked
   * brokers ignore it.
   */
  readonly local?: LocalEnvelope | undefined;
}

/** Result of publishing one message. */
export type PublishOutcome =
  | {
      readonly ok: true;
      /** The broker already had a message with this id inside its dedupe window; nothing new was stored. */
      readonly duplicate: boolean;
    }
  | {
      readonly ok: false;
      /** Why this message was not stored (definite), or `EnqueueOutcomeUnknownError` (ambiguous). */
      readonly error: JobsError;
    };

/** Options of a consumer. */
export interface ConsumeOptions {
  /** Most unsettled deliveries this consumer may hold at once. */
  readonly prefetch: number;
  /** How long a delivery stays leased to this consumer without `extendLease`, in ms. */
  readonly leaseMs: number;
  /**
   * The longest handler timeout, in ms, among the job definitions the worker has registered for
   * this queue (absent when it has none). A broker that limits how long one delivery may stay
   * unsettled (RabbitMQ's `consumer_timeout`) can warn when a job may run past that limit. A
   * per-enqueue `timeout` override longer than the definition's is not seen here.
   */
  readonly jobTimeoutMs?: number;
  /**
   * The worker keeps job records in this store (docs/concepts/records.md). A broker that can claim
   * a delivery's record in the same operation that hands the delivery out (broker and store on one
   * server) may do so and set `Delivery.claim`, and offer `Delivery.finishAndAck`; any other
   * broker ignores this, and core makes those calls to the store itself.
   */
  readonly records?: RecordClaims;
}

/** How to claim records for a consumer's deliveries (`ConsumeOptions.records`). */
export interface RecordClaims {
  readonly store: JobStore;
  /** The claim's time to live: the consumer's lease. */
  readonly ttlMs: number;
  /** The worker's id, kept in the record. */
  readonly worker: string;
}

/** Why a message was dead-lettered. */
export type DeadLetterReason = "max-attempts" | "non-retryable" | "unknown-job" | "validation" | "undecodable" | "crash-loop" | "signature";

/** What core asks a broker to keep when it dead-letters a message. */
export interface DeadLetterRecord {
  /** The body to keep: the envelope with its last error, or the raw bytes when undecodable. */
  readonly body: string;
  /** Why. */
  readonly reason: DeadLetterReason;
  /** The failure. */
  readonly error: SerializedError;
  /** When, in ms since the epoch. */
  readonly failedAt: number;
}

/** A dead letter as listed by inspection. */
export interface DeadLetter extends DeadLetterRecord {
  /** Broker-assigned handle of this dead letter, for `removeDeadLetters`. */
  readonly key: string;
}

/**
 * One message handed to a consumer under a lease. Exactly one of ack / retry / defer / deadLetter
 * settles it; until then it counts against the consumer's prefetch. Settling after the lease was
 * lost rejects with `LeaseLostError`.
 */
export interface Delivery {
  /** The raw body as published (core decodes it). */
  readonly body: string;
  /**
   * How many times this message has been handed out since it was last published, retried or
   * deferred (1 the first time). Values above 1 mean a consumer died or lost its lease: core uses
   * it to detect crash loops, never to count attempts.
   */
  readonly deliveryCount: number;
  /** Exactly the `local` this message was published with, if the broker kept it (in-process brokers only). */
  readonly local?: LocalEnvelope | undefined;
  /**
   * The claim of this delivery's record, when the broker made it while handing the delivery out
   * (`ConsumeOptions.records`), with the generation the body carries; core then makes no claim of
   * its own. Absent: core claims.
   */
  readonly claim?: ClaimOutcome | undefined;
  /**
   * Optional, with `claim`: writes the record's finish and, when it committed, acks, in one
   * operation. Resolves true when the finish committed (the ack may still have found the lease
   * lost: the message then comes back and is acked unrun), false when the store refused it (the
   * delivery stays held: core releases it).
   */
  finishAndAck?(request: FinishRequest): Promise<boolean>;
  /** Done: remove the message. */
  ack(): Promise<void>;
  /**
   * Failed: replace the message by `next` (same id, its body says attempt + 1), ready after
   * `next.delayMs`. The next delivery must carry `next.body`, or the attempt count would drift.
   * Core also replaces a crash suspect it hands back unrun this way (same attempt, its delivery
   * count carried in the body).
   */
  retry(next: OutgoingMessage): Promise<void>;
  /** Not yet due: hand the same message out again after `delayMs` (≤ maxDelayMs; 0 releases it now). No attempt is counted. */
  defer(delayMs: number): Promise<void>;
  /** Give up: move the message to the queue's dead letters with the record. */
  deadLetter(record: DeadLetterRecord): Promise<void>;
  /** Keep the lease for `ms` more from now (heartbeat). */
  extendLease(ms: number): Promise<void>;
}

/** A running consumer. */
export interface Subscription {
  /**
   * Stop receiving new deliveries. Deliveries already handed out stay valid and can still be
   * settled; any the consumer holds unsettled when its broker closes go back to the queue.
   */
  stop(): Promise<void>;
  /**
   * Optional: stop asking the broker for deliveries until `resume()`, resolving once no request for
   * deliveries is outstanding; deliveries that arrive before it resolves are handed out as usual.
   * Core pauses while it runs a crash suspect alone, so that a crash counts only the deliveries
   * core holds. Every broker that can hand out a delivery while a suspect runs should implement
   * it: a long poll or pull request that takes messages which reach the process only later (SQS,
   * NATS), and a push consumer too (RabbitMQ: a delivery pushed into the open prefetch window
   * while the suspect runs is counted again when the suspect crashes the process). A pause lasts
   * across reconnects until `resume()`. It should resolve rather than reject: core starts the
   * suspect once every pause has settled, whichever way, and ignores a rejection.
   */
  pause?(): Promise<void>;
  /** Undoes `pause()`. */
  resume?(): void;
}

/** Message counts of one physical queue. Brokers that only know approximations say so in their docs. */
export interface QueueCounts {
  /** Ready to be delivered now. */
  readonly waiting: number;
  /** Held until a later time (delays and retries with backoff). */
  readonly delayed: number;
  /** Delivered and not yet settled. */
  readonly active: number;
  /** Dead letters kept. */
  readonly dead: number;
}

/** Events a broker reports about itself. */
export interface BrokerEventMap {
  /** A broker setting voids a guarantee (e.g. Redis eviction policy); the message says which, the code names it (docs/concepts/logging.md). */
  "config-warning": { readonly code: string; readonly message: string };
  /** Connection lost; the adapter is reconnecting. */
  disconnected: { readonly error?: SerializedError };
  /** Connection re-established and consumers resumed. */
  reconnected: Record<string, never>;
  /** A non-loopback connection without TLS or credentials. */
  "insecure-connection": { readonly code: "JOBS_INSECURE_CONNECTION"; readonly message: string };
  /** An internal error the adapter recovered from (nothing was lost). */
  error: { readonly error: SerializedError };
}

/** Listener registration shared by brokers, clients and workers; returns an unsubscribe function. */
export type On<M> = <E extends keyof M & string>(event: E, listener: (event: M[E]) => void) => () => void;

/** The contract every adapter implements. Queue names here are physical queue names chosen by core. */
export interface Broker {
  /** Short adapter name for messages and reports, e.g. "redis". */
  readonly name: string;
  /** What the broker does natively. Constant for the broker's lifetime. */
  readonly capabilities: BrokerCapabilities;
  /** Durably store the messages, in order, resolving once the broker has accepted each one (or said why not). */
  publish(queue: string, messages: readonly OutgoingMessage[]): Promise<PublishOutcome[]>;
  /** Start delivering the queue's ready messages to `onDelivery`, never more than `prefetch` unsettled. */
  consume(queue: string, options: ConsumeOptions, onDelivery: (delivery: Delivery) => void): Promise<Subscription>;
  /** Message counts of the queue. */
  counts(queue: string): Promise<QueueCounts>;
  /** Up to `limit` dead letters of the queue, oldest first, skipping `offset`. */
  listDeadLetters(queue: string, options: { readonly limit: number; readonly offset?: number }): Promise<DeadLetter[]>;
  /** Remove dead letters by key; resolves to how many were removed. */
  removeDeadLetters(queue: string, keys: readonly string[]): Promise<number>;
  /** Remove every waiting, delayed and dead message of the queue (deliveries in flight are left alone). */
  purge(queue: string): Promise<void>;
  /** Subscribe to broker events. */
  on: On<BrokerEventMap>;
  /** Stop consumers, release unsettled deliveries, close connections. Idempotent. Later calls reject with `BrokerClosedError`. */
  close(): Promise<void>;
}
