/** counts, dead letters (list, remove) and purge: JetStream API requests on the stream and the ready consumer. */
import type { DeadLetter, DeadLetterReason, QueueCounts, SerializedError } from "@jobs/core/adapter";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectionError } from "./connection.js";
import { ERROR, FAILED_AT, notFound, REASON, type Subjects } from "./internal/topology.js";

/** What inspection needs of the connection. */
export interface InspectionLink {
  readonly jsm: JetStreamManager;
  open(): Promise<NatsConnection>;
}

export class NatsInspection {
  readonly #link: InspectionLink;
  readonly #subjects: Subjects;
  readonly #stream: string;

  constructor(link: InspectionLink, subjects: Subjects, stream: string) {
    this.#link = link;
    this.#subjects = subjects;
    this.#stream = stream;
  }

  async counts(queue: string): Promise<QueueCounts> {
    const names = this.#subjects.of(queue);
    await this.#link.open();
    const jsm = this.#link.jsm;
    try {
      const [stream, consumer] = await Promise.all([
        jsm.streams.info(this.#stream, { subjects_filter: names.all }),
        jsm.consumers.info(this.#stream, `ready_${queue}`).catch((error: unknown) => {
          if (notFound(error)) return undefined;
          throw error;
        }),
      ]);
      const subjects = stream.state.subjects ?? {};
      // The consumer knows what it has not delivered yet and what is delivered but unacked (even
      // when purged from the stream meanwhile); without a consumer, everything on the subject waits.
      const waiting = consumer === undefined ? (subjects[names.ready] ?? 0) : consumer.num_pending;
      const active = consumer === undefined ? 0 : consumer.num_ack_pending;
      return { waiting, delayed: subjects[names.delayed] ?? 0, active, dead: subjects[names.dead] ?? 0 };
    } catch (error) {
      throw connectionError(`counts of "${queue}"`, error);
    }
  }

  /** Dead letters of the queue in stream order (one message get per dead letter). */
  async *#dead(queue: string): AsyncGenerator<DeadLetter> {
    const names = this.#subjects.of(queue);
    await this.#link.open();
    const jsm = this.#link.jsm;
    for (let seq = 1; ; ) {
      const query = { seq, next_by_subj: names.dead };
      const stored = await jsm.streams.getMessage(this.#stream, query).catch((error: unknown) => {
        throw connectionError(`dead letters of "${queue}"`, error);
      });
      if (stored === null) return;
      seq = stored.seq + 1;
      const h = stored.header;
      let error: SerializedError = { name: "Error", message: "(no failure recorded)" };
      try {
        error = JSON.parse(h.get(ERROR)) as SerializedError;
      } catch {
        // Published to the dead subject by something else than this adapter: keep the defaults.
      }
      yield {
        key: String(stored.seq),
        body: stored.string(),
        reason: (h.get(REASON) || "undecodable") as DeadLetterReason,
        error,
        failedAt: Number(h.get(FAILED_AT)) || Date.parse(stored.timestamp),
      };
    }
  }

  async listDeadLetters(queue: string, options: { readonly limit: number; readonly offset?: number }): Promise<DeadLetter[]> {
    const out: DeadLetter[] = [];
    let skip = options.offset ?? 0;
    if (options.limit <= 0) return out;
    for await (const dead of this.#dead(queue)) {
      if (skip > 0) skip--;
      else if (out.push(dead) >= options.limit) break;
    }
    return out;
  }

  async removeDeadLetters(queue: string, keys: readonly string[]): Promise<number> {
    const names = this.#subjects.of(queue);
    await this.#link.open();
    const jsm = this.#link.jsm;
    let removed = 0;
    for (const key of new Set(keys)) {
      const seq = Number(key);
      if (!Number.isSafeInteger(seq) || seq < 1 || String(seq) !== key) continue;
      try {
        // Only this queue's dead letters: a key of another queue is an unknown key here.
        const stored = await jsm.streams.getMessage(this.#stream, { seq });
        if (stored?.subject === names.dead && (await jsm.streams.deleteMessage(this.#stream, seq, false))) removed++;
      } catch (error) {
        if (!notFound(error)) throw connectionError(`remove dead letters of "${queue}"`, error);
      }
    }
    return removed;
  }

  async purge(queue: string): Promise<void> {
    const names = this.#subjects.of(queue);
    await this.#link.open();
    await this.#link.jsm.streams.purge(this.#stream, { filter: names.all }).catch((error: unknown) => {
      throw connectionError(`purge of "${queue}"`, error);
    });
  }
}
