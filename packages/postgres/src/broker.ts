/** `PostgresAdapter`: the Broker contract on PostgreSQL tables (see schema.ts and sql.ts). */
import {
  assertConsumeOptions,
  type Broker,
  type BrokerCapabilities,
  BrokerConnectionError,
  type BrokerEventMap,
  brokerClosedError,
  brokerConnectionError,
  brokerEvents,
  type ConsumeOptions,
  type DeadLetter,
  type Delivery,
  type Emitter,
  EnqueueOutcomeUnknownError,
  InvalidOptionsError,
  type JobsError,
  type OutgoingMessage,
  type PublishOutcome,
  payloadTooLarge,
  type QueueCounts,
  redactedCause,
  redactedMessage,
  type Subscription,
} from "@jobs/core/adapter";
import { isServerError, NotSentError, PostgresConnection } from "./connection.js";
import { type ConsumerHost, type FetchedRow, PostgresConsumer, type SettleOp } from "./consumer.js";
import { type PostgresBrokerOptions, type PostgresSettings, resolvePostgresOptions } from "./options.js";
import { type Statements, statements } from "./sql.js";

/** The PostgreSQL broker: the Broker contract, nothing more. */
export interface PostgresBroker extends Broker {}

/** A queue name: any text up to 200 characters without control characters. */
const QUEUE = /^[^\p{Cc}]{1,200}$/u;

function checkQueue(queue: string): string {
  if (typeof queue !== "string" || !QUEUE.test(queue)) {
    throw new InvalidOptionsError("queue", `expected 1-200 characters without control characters, got ${JSON.stringify(queue)}`);
  }
  return queue;
}

interface PendingPublish {
  readonly queue: string;
  readonly message: OutgoingMessage;
  readonly dedupe: boolean;
  readonly resolve: (outcome: PublishOutcome) => void;
}

interface PendingSettle {
  readonly op: SettleOp;
  readonly resolve: (applied: boolean) => void;
  readonly reject: (error: unknown) => void;
}

const DEDUPE_SWEEP_MS = 60_000;

/**
 * Runs a statement again when PostgreSQL aborted it as a deadlock victim or a serialization
 * failure: it was rolled back whole, so sending it again cannot apply anything twice.
 */
async function retryDeadlock<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (attempt >= 3 || !isServerError(error) || (code !== "40P01" && code !== "40001")) throw error;
    }
  }
}

export class PostgresAdapter implements PostgresBroker {
  readonly name: string = "postgres";
  readonly capabilities: BrokerCapabilities;
  readonly on: Broker["on"];
  readonly #settings: PostgresSettings;
  readonly #events: Emitter<BrokerEventMap>;
  readonly #connection: PostgresConnection;
  readonly #sql: Statements;
  readonly #consumers = new Set<PostgresConsumer>();
  /** Stopped consumers, whose deliveries close() still hands back. */
  readonly #stopping = new Set<PostgresConsumer>();
  #publishes: PendingPublish[] = [];
  #settles: PendingSettle[] = [];
  #publishScheduled = false;
  #settleScheduled = false;
  #settling: Promise<void> | undefined;
  #lastSweep = 0;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: PostgresBrokerOptions) {
    this.#settings = resolvePostgresOptions(options);
    this.#events = brokerEvents("postgres", options.logger);
    this.on = this.#events.on;
    this.capabilities = this.#settings.capabilities;
    this.#connection = new PostgresConnection(this.#settings, this.#events, {
      notified: (queue) => {
        for (const c of this.#consumers) if (c.queue === queue) c.kick();
      },
      reconnected: () => {
        for (const c of this.#consumers) c.kick();
      },
    });
    this.#sql = statements(this.#settings.schema, this.#connection.channel);
    this.#connection.start();
  }

  #ensureOpen(): void {
    if (this.#closed) throw brokerClosedError("postgres");
  }

  /** Before the first connection, a call waits for it (at most `connectTimeout`) and fails definitely if it does not come. */
  async #connected(queue: string): Promise<void> {
    this.#ensureOpen();
    checkQueue(queue);
    if (this.#connection.first.connected) return;
    await this.#connection.first.wait();
    this.#ensureOpen();
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<PublishOutcome[]> {
    try {
      await this.#connected(queue);
    } catch (error) {
      if ((error as JobsError).code !== "broker-connection") throw error;
      return messages.map((): PublishOutcome => ({ ok: false, error: error as JobsError }));
    }
    if (!Array.isArray(messages)) throw new InvalidOptionsError("messages", "expected an array of messages");
    return Promise.all(
      messages.map((message): PublishOutcome | Promise<PublishOutcome> => {
        const tooLarge = payloadTooLarge(message.body, this.capabilities.maxPayloadBytes);
        if (tooLarge !== undefined) return { ok: false, error: tooLarge };
        const dedupe = message.dedupe && message.generatedId !== true && this.#settings.dedupeWindowMs > 0;
        return new Promise<PublishOutcome>((resolve) => {
          this.#publishes.push({ queue, message, dedupe, resolve });
          if (!this.#publishScheduled) {
            this.#publishScheduled = true;
            queueMicrotask(() => void this.#flushPublishes());
          }
        });
      }),
    );
  }

  async #flushPublishes(): Promise<void> {
    this.#publishScheduled = false;
    // The same id twice with dedupe in one tick (one call or several): all but the first are
    // duplicates, as one statement cannot upsert a row twice.
    const seen = new Set<string>();
    const batch = this.#publishes.filter((p) => {
      if (!p.dedupe) return true;
      const key = `${p.queue}\u0000${p.message.id}`;
      if (!seen.has(key)) {
        seen.add(key);
        return true;
      }
      p.resolve({ ok: true, duplicate: true });
      return false;
    });
    this.#publishes = [];
    const values = [
      batch.map((p) => p.queue),
      batch.map((p) => p.message.id),
      batch.map((p) => p.message.body),
      batch.map((p) => p.message.priority),
      batch.map((p) => Math.max(0, Math.ceil(p.message.delayMs))),
      batch.map((p) => p.dedupe),
      this.#settings.dedupeWindowMs,
    ];
    try {
      const result = await retryDeadlock(() => this.#connection.query<{ ord: number | null }>(this.#sql.publish, values, "jobs_publish"));
      const stored = new Set<number>();
      for (const row of result.rows) if (row.ord !== null) stored.add(row.ord);
      batch.forEach((p, i) => {
        p.resolve({ ok: true, duplicate: !stored.has(i + 1) });
      });
    } catch (error) {
      const failure: JobsError =
        error instanceof NotSentError
          ? brokerConnectionError("postgres", "publish failed (nothing was sent)", error.cause)
          : isServerError(error)
            ? brokerConnectionError("postgres", "publish refused", error)
            : new EnqueueOutcomeUnknownError(
                `[jobs] [postgres] publish failed, the messages may or may not be stored: ${redactedMessage(error)}`,
                {
                  cause: redactedCause(error),
                },
              );
      for (const p of batch) p.resolve({ ok: false, error: failure });
    }
    if (Date.now() - this.#lastSweep > DEDUPE_SWEEP_MS) {
      this.#lastSweep = Date.now();
      this.#connection.query(this.#sql.expireDedupe, []).catch(() => {});
    }
  }

  #settle(op: SettleOp): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.#settles.push({ op, resolve, reject });
      if (!this.#settleScheduled) {
        this.#settleScheduled = true;
        setImmediate(() => void this.#flushSettles());
      }
    });
  }

  /**
   * Sends this turn's settlements as one statement. One settlement statement at a time: two in
   * flight could lock the same rows in opposite orders and deadlock (a settlement that PostgreSQL
   * aborted would leave its delivery to its lease, and the job would run again).
   */
  #flushSettles(): Promise<void> {
    this.#settleScheduled = false;
    if (this.#settling !== undefined) return this.#settling.then(() => this.#flushSettles());
    if (this.#settles.length === 0) return Promise.resolve();
    this.#settling = this.#sendSettles().finally(() => {
      this.#settling = undefined;
    });
    return this.#settling;
  }

  async #sendSettles(): Promise<void> {
    const batch = this.#settles;
    this.#settles = [];
    if (batch.length === 0) return;
    // An extension of a delivery settled in the same batch is moot: it held its lease, and the settlement decides.
    const settling = new Set<string>();
    for (const s of batch) if (s.op.kind !== "extend") settling.add(s.op.token);
    const v: unknown[][] = Array.from({ length: 16 }, () => []);
    const push = (index: number, ...items: unknown[]): void => {
      for (let k = 0; k < items.length; k++) (v[index + k] as unknown[]).push(items[k]);
    };
    const moot: PendingSettle[] = [];
    for (const s of batch) {
      const op = s.op;
      switch (op.kind) {
        case "ack":
          push(0, op.token);
          break;
        case "extend":
          if (settling.has(op.token)) moot.push(s);
          else push(1, op.token, op.ms);
          break;
        case "retry":
          push(3, op.token, op.body, op.priority, op.delayMs);
          break;
        case "defer":
          push(7, op.token, op.delayMs);
          break;
        case "dead":
          push(9, op.token, op.record.body, op.record.reason, JSON.stringify(op.record.error), op.record.failedAt);
          break;
        case "release":
          push(14, op.token, op.undo ? 1 : 0);
          break;
      }
    }
    let applied: Set<string>;
    try {
      const result = await retryDeadlock(() => this.#connection.query<{ token: string | null }>(this.#sql.settle, v, "jobs_settle"));
      applied = new Set();
      for (const row of result.rows) if (row.token !== null) applied.add(row.token);
    } catch (error) {
      const failure = this.#connection.closed
        ? brokerClosedError("postgres")
        : brokerConnectionError("postgres", "settlement failed", error instanceof NotSentError ? error.cause : error);
      for (const s of batch) s.reject(failure);
      return;
    }
    const mootSet = new Set(moot);
    for (const s of batch) s.resolve(mootSet.has(s) || applied.has(s.op.token));
  }

  async consume(queue: string, options: ConsumeOptions, onDelivery: (delivery: Delivery) => void): Promise<Subscription> {
    await this.#connected(queue);
    assertConsumeOptions(options);
    if (typeof onDelivery !== "function") throw new InvalidOptionsError("onDelivery", "expected a function");
    const host: ConsumerHost = {
      events: this.#events,
      maxIdleMs: this.#settings.maxIdleMs,
      fetch: async (q, want, leaseMs) => {
        const result = await this.#connection.query<FetchedRow>(this.#sql.fetch, [q, want, leaseMs], "jobs_fetch");
        return result.rows;
      },
      nextDue: async (q) => {
        const result = await this.#connection.query<{ next: string | null }>(this.#sql.nextDue, [q], "jobs_next_due");
        const next = result.rows[0]?.next;
        return next === null || next === undefined ? undefined : Number(next);
      },
      settle: (op) => this.#settle(op),
      stopped: (c) => {
        // Its held deliveries stay settleable; the broker's close still releases them.
        if (!this.#closed) this.#stopping.add(c);
        this.#consumers.delete(c);
      },
    };
    const consumer = new PostgresConsumer(host, queue, options, onDelivery);
    this.#consumers.add(consumer);
    consumer.kick();
    return consumer;
  }

  async counts(queue: string): Promise<QueueCounts> {
    await this.#connected(queue);
    const result = await this.#inspect<QueueCounts>(this.#sql.counts, [queue]);
    const row = result[0] as QueueCounts;
    return { waiting: row.waiting, delayed: row.delayed, active: row.active, dead: row.dead };
  }

  async listDeadLetters(queue: string, options: { readonly limit: number; readonly offset?: number }): Promise<DeadLetter[]> {
    await this.#connected(queue);
    const limit = options?.limit;
    const offset = options?.offset ?? 0;
    if (!Number.isInteger(limit) || limit < 0)
      throw new InvalidOptionsError("limit", `expected a non-negative integer, got ${String(limit)}`);
    if (!Number.isInteger(offset) || offset < 0)
      throw new InvalidOptionsError("offset", `expected a non-negative integer, got ${String(offset)}`);
    const rows = await this.#inspect<{ key: string; body: string; reason: string; error: string; failed_at: string }>(this.#sql.listDead, [
      queue,
      limit,
      offset,
    ]);
    return rows.map((r) => ({
      key: r.key,
      body: r.body,
      reason: r.reason as DeadLetter["reason"],
      error: JSON.parse(r.error) as DeadLetter["error"],
      failedAt: Number(r.failed_at),
    }));
  }

  async removeDeadLetters(queue: string, keys: readonly string[]): Promise<number> {
    await this.#connected(queue);
    if (!Array.isArray(keys)) throw new InvalidOptionsError("keys", "expected an array of dead-letter keys");
    const ids = keys.filter((k) => typeof k === "string" && /^\d{1,18}$/.test(k));
    if (ids.length === 0) return 0;
    const result = await this.#connection.query(this.#sql.removeDead, [queue, ids]).catch((error: unknown) => {
      throw this.#inspectError(error);
    });
    return result.rowCount ?? 0;
  }

  async purge(queue: string): Promise<void> {
    await this.#connected(queue);
    await this.#inspect(this.#sql.purge, [queue]);
  }

  async #inspect<R>(text: string, values: unknown[]): Promise<R[]> {
    try {
      const result = await this.#connection.query(text, values);
      return result.rows as R[];
    } catch (error) {
      throw this.#inspectError(error);
    }
  }

  #inspectError(error: unknown): unknown {
    if (this.#closed) return brokerClosedError("postgres");
    if (error instanceof NotSentError) return brokerConnectionError("postgres", "cannot reach PostgreSQL", error.cause);
    if (error instanceof BrokerConnectionError) return error;
    return brokerConnectionError("postgres", "statement failed", error);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    const consumers = [...this.#consumers, ...this.#stopping];
    this.#consumers.clear();
    this.#stopping.clear();
    // Fetches on their way come back and are released (stopped); then every held delivery goes back too.
    await Promise.allSettled(consumers.map((c) => c.stop()));
    const released = consumers.map((c) => c.releaseHeld());
    await this.#flushSettles();
    await Promise.allSettled(released);
    await this.#connection.close();
  }
}
