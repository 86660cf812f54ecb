/**
 * The stream, its subjects and consumers: `<prefix>.<queue>.ready|delayed|dead` in one
 * work-queue stream, durable pull consumers `ready_<queue>` and `delayed_<queue>`.
 */
import { type BrokerEventMap, type Emitter, InvalidOptionsError } from "@jobs/core/adapter";
import { AckPolicy, type JetStreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { connectionError } from "../connection.js";
import { TOKEN } from "../options.js";

/** Header of a delayed message: when it is due (ms since the epoch). */
export const DUE = "Jobs-Due";
/** Headers of a dead letter: the reason, when the job failed, and the failure (JSON). */
export const REASON = "Jobs-Reason";
export const FAILED_AT = "Jobs-Failed-At";
export const ERROR = "Jobs-Error";

const NOT_FOUND = 404;

/** The subjects of one queue. */
export interface Names {
  readonly ready: string;
  readonly delayed: string;
  readonly dead: string;
  /** All three (a filter). */
  readonly all: string;
}

/** The subjects of each queue, made once per queue name. */
export class Subjects {
  readonly #prefix: string;
  readonly #names = new Map<string, Names>();

  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  /** The subjects of `queue`; `InvalidOptionsError` when the name is not one subject token. */
  of(queue: string): Names {
    let names = this.#names.get(queue);
    if (names === undefined) {
      // Queue names become subject tokens: a dot, wildcard or space would address other subjects.
      if (typeof queue !== "string" || !TOKEN.test(queue)) {
        throw new InvalidOptionsError(
          "queue",
          `[nats] a queue name becomes a subject token and may contain only letters, digits, "_" and "-" (1-128), got ${JSON.stringify(queue)}`,
        );
      }
      const base = `${this.#prefix}.${queue}`;
      names = { ready: `${base}.ready`, delayed: `${base}.delayed`, dead: `${base}.dead`, all: `${base}.*` };
      this.#names.set(queue, names);
    }
    return names;
  }
}

/** Whether a JetStream API error says there is no such stream, consumer or message (404). */
export function notFound(error: unknown): boolean {
  return (error as { status?: unknown } | null)?.status === NOT_FOUND;
}

/** What `ensureStream` checks and creates. */
export interface StreamSettings {
  readonly stream: string;
  readonly prefix: string;
  readonly replicas: number;
  readonly dedupeWindowMs: number;
}

/** Creates the work-queue stream on `<prefix>.>`, or checks the one there (warning about memory storage and another duplicate window). */
export async function ensureStream(jsm: JetStreamManager, settings: StreamSettings, events: Emitter<BrokerEventMap>): Promise<void> {
  const { stream, dedupeWindowMs } = settings;
  const subject = `${settings.prefix}.>`;
  for (let attempt = 0; ; attempt++) {
    try {
      const info = await jsm.streams.info(stream);
      const c = info.config;
      if (c.retention !== RetentionPolicy.Workqueue || !c.subjects?.includes(subject)) {
        throw new InvalidOptionsError("stream", `stream "${stream}" exists but is not a work-queue stream on "${subject}"`);
      }
      if (c.storage !== StorageType.File)
        events.emit("config-warning", {
          code: "JOBS_NATS_MEMORY_STORAGE",
          message: `[jobs] [nats] stream "${stream}" keeps messages in memory: they do not survive a server restart`,
        });
      if (Math.round(c.duplicate_window / 1e6) !== dedupeWindowMs) {
        events.emit("config-warning", {
          code: "JOBS_NATS_DEDUPE_WINDOW",
          message: `[jobs] [nats] stream "${stream}" has a duplicate window of ${c.duplicate_window / 1e6} ms, not ${dedupeWindowMs} ms`,
        });
      }
      return;
    } catch (error) {
      if (!notFound(error) || attempt > 2)
        throw error instanceof InvalidOptionsError ? error : connectionError(`stream "${stream}"`, error);
    }
    try {
      await jsm.streams.add({
        name: stream,
        subjects: [subject],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        num_replicas: settings.replicas,
        duplicate_window: dedupeWindowMs * 1e6,
      });
      return;
    } catch {
      // Created concurrently by another instance: read it again.
    }
  }
}

/**
 * Creates the durable pull consumer, or lowers the AckWait of the one there to `ackWaitMs`;
 * resolves with the AckWait in force (ms).
 */
export async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  durable: string,
  filter: string,
  ackWaitMs: number,
): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      const info = await jsm.consumers.info(stream, durable);
      const current = (info.config.ack_wait ?? 30e9) / 1e6;
      if (current <= ackWaitMs) return current;
      // The server's AckWait is the shortest lease of any worker; longer leases are kept by working() heartbeats.
      await jsm.consumers.update(stream, durable, { ack_wait: ackWaitMs * 1e6 });
      return ackWaitMs;
    } catch (error) {
      if (!notFound(error) || attempt > 2) throw connectionError(`consumer "${durable}"`, error);
    }
    try {
      await jsm.consumers.add(stream, {
        durable_name: durable,
        filter_subject: filter,
        ack_policy: AckPolicy.Explicit,
        ack_wait: ackWaitMs * 1e6,
        max_ack_pending: -1,
        max_deliver: -1,
      });
      return ackWaitMs;
    } catch {
      // Created concurrently: read it again.
    }
  }
}
