/**
 * Job records as users see them (`client.getJob`, `listJobs`), and the link core keeps to a job
 * store: the batched calls of one turn, the record written on enqueue, and the message a record
 * stands for (what the sweeper and a requeue publish). docs/concepts/records.md.
 */
import type { BrokerCapabilities, OutgoingMessage } from "./broker.js";
import { type Codec, IDENTITY_CODEC, sealedValue } from "./codec.js";
import { type EnvelopeError, type EnvelopeMeta, encodeLocalEnvelope, type LocalEnvelope, type Metadata } from "./envelope.js";
import { InvalidOptionsError, UnsupportedError } from "./errors.js";
import { TurnBatch } from "./internal/store/batch.js";
import { type Priority, priorityLevel } from "./priority.js";
import { physicalQueue } from "./routing.js";
import type {
  ClaimOutcome,
  ClaimRequest,
  FinishRequest,
  InsertOutcome,
  JobStatus,
  JobStore,
  NewJobRecord,
  RenewOutcome,
  RenewRequest,
  StoredJob,
} from "./store.js";

export type { CancelOutcome, JobStatus } from "./store.js";

/** What a store remembers of a job (`client.getJob`). */
export interface JobRecord<O = unknown> {
  readonly id: string;
  readonly name: string;
  readonly queue: string;
  readonly status: JobStatus;
  /** The attempt running, last run or next to run, from 1. */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly priority: Priority;
  readonly tags: readonly string[];
  readonly metadata?: Metadata;
  /** The payload as enqueued. */
  readonly payload: unknown;
  /** The handler's return value (`succeeded` only; absent when it returned nothing). */
  readonly result?: O;
  /** The last `ctx.progress` value. */
  readonly progress?: unknown;
  /** The last failure. */
  readonly error?: EnvelopeError;
  /** ms since the epoch. */
  readonly enqueuedAt: number;
  /** Due time of the current attempt. */
  readonly runAt: number;
  /** When the current or last attempt was claimed (store clock). */
  readonly startedAt?: number;
  /** When the job reached a terminal status (store clock). */
  readonly finishedAt?: number;
  /** Last change (store clock). */
  readonly updatedAt: number;
  /** The worker that holds or last held it. */
  readonly worker?: string;
  /** Size of the payload's JSON, bytes (UTF-8). */
  readonly payloadBytes: number;
  /** Size of the result's JSON, bytes (UTF-8). */
  readonly resultBytes?: number;
  /** A cancel was asked while it ran. */
  readonly cancelRequested: boolean;
  /** Publish generation, claims' fence and claims of this attempt: the bookkeeping of docs/concepts/records.md. */
  readonly gen: number;
  readonly fence: number;
  readonly claims: number;
}

/** Filters and paging of `client.listJobs`. */
export interface ListJobsOptions {
  readonly queue?: string;
  readonly name?: string;
  readonly status?: JobStatus;
  readonly tag?: string;
  /** `cursor` of the previous page. */
  readonly cursor?: string;
  /** 1 to 1000. @default 100 */
  readonly limit?: number;
}

/** A page of `client.listJobs`, oldest enqueue first. */
export interface JobPage {
  readonly jobs: readonly JobRecord[];
  /** Pass it back as `cursor` for the next page; absent on the last page. */
  readonly cursor?: string;
}

/**
 * The public view of a stored record (JSON texts parsed). A sealed payload is decrypted when the
 * codec has the key, and shown sealed (`{"$enc":…}`) to a process without encryption keys.
 */
export function recordOf(s: StoredJob, codec: Codec = IDENTITY_CODEC): JobRecord {
  const parsed: unknown = JSON.parse(s.payloadJson);
  const r: { -readonly [K in keyof JobRecord]: JobRecord[K] } = {
    id: s.id,
    name: s.name,
    queue: s.queue,
    status: s.status,
    attempt: s.attempt,
    maxAttempts: s.maxAttempts,
    priority: s.priority,
    tags: [...s.tags],
    payload: codec.encrypts && sealedValue(parsed) !== undefined ? codec.openPayload(parsed, s.id, s.name) : parsed,
    enqueuedAt: s.enqueuedAt,
    runAt: s.runAt,
    updatedAt: s.updatedAt,
    payloadBytes: Buffer.byteLength(s.payloadJson, "utf8"),
    cancelRequested: s.cancelRequested,
    gen: s.gen,
    fence: s.fence,
    claims: s.claims,
  };
  if (s.metadataJson !== undefined) r.metadata = JSON.parse(s.metadataJson) as Metadata;
  if (s.resultJson !== undefined) {
    r.result = JSON.parse(s.resultJson);
    r.resultBytes = Buffer.byteLength(s.resultJson, "utf8");
  }
  if (s.progressJson !== undefined) r.progress = JSON.parse(s.progressJson);
  if (s.errorJson !== undefined) r.error = JSON.parse(s.errorJson) as EnvelopeError;
  if (s.startedAt !== undefined) r.startedAt = s.startedAt;
  if (s.finishedAt !== undefined) r.finishedAt = s.finishedAt;
  if (s.worker !== undefined) r.worker = s.worker;
  return r;
}

/** The record of a job about to be published for the first time. */
export function newRecord(local: LocalEnvelope, tags: readonly string[], now: number): NewJobRecord {
  const m = local.meta;
  const r: { -readonly [K in keyof NewJobRecord]: NewJobRecord[K] } = {
    id: m.id,
    name: m.name,
    queue: m.queue,
    status: m.runAt > now ? "scheduled" : "waiting",
    attempt: m.attempt,
    maxAttempts: m.maxAttempts,
    priority: m.priority,
    tags,
    payloadJson: local.payloadJson,
    enqueuedAt: m.enqueuedAt,
    runAt: m.runAt,
    timeout: m.timeout,
    gen: m.gen ?? 1,
  };
  if (m.meta !== undefined) r.metadataJson = JSON.stringify(m.meta);
  if (m.trace !== undefined) r.traceJson = JSON.stringify(m.trace);
  return r;
}

/** The message of a record's current generation: what the sweeper and a requeue publish. */
export function messageOf(
  s: StoredJob,
  caps: BrokerCapabilities,
  now: number,
  codec: Codec = IDENTITY_CODEC,
): { physical: string; message: OutgoingMessage } {
  const meta: { -readonly [K in keyof EnvelopeMeta]: EnvelopeMeta[K] } = {
    v: 1,
    id: s.id,
    name: s.name,
    queue: s.queue,
    attempt: s.attempt,
    maxAttempts: s.maxAttempts,
    priority: s.priority,
    enqueuedAt: s.enqueuedAt,
    runAt: s.runAt,
    timeout: s.timeout,
  };
  if (s.traceJson !== undefined) meta.trace = JSON.parse(s.traceJson);
  if (s.metadataJson !== undefined) meta.meta = JSON.parse(s.metadataJson);
  if (s.errorJson !== undefined) meta.lastError = JSON.parse(s.errorJson);
  meta.gen = s.gen;
  const local: LocalEnvelope = { meta, payloadJson: s.payloadJson };
  const level = priorityLevel(s.priority, "priority");
  return {
    physical: physicalQueue(s.queue, level, caps),
    message: {
      id: s.id,
      // The record keeps the payload as sent (sealed when encrypting): only the signature is new.
      body: codec.active ? codec.sign(encodeLocalEnvelope(local)) : encodeLocalEnvelope(local),
      priority: level,
      delayMs: Math.min(Math.max(0, s.runAt - now), caps.maxDelayMs),
      dedupe: false,
      local: codec.active ? undefined : local,
    },
  };
}

/** A store as core uses it: the hot calls batched per turn. */
export class StoreLink {
  readonly store: JobStore;
  readonly insert: TurnBatch<NewJobRecord, InsertOutcome>;
  readonly claim: TurnBatch<ClaimRequest, ClaimOutcome>;
  readonly renew: TurnBatch<RenewRequest, RenewOutcome>;
  readonly finish: TurnBatch<FinishRequest, boolean>;
  readonly #published: TurnBatch<{ id: string; gen: number }, void>;

  constructor(store: JobStore) {
    this.store = store;
    this.insert = new TurnBatch((r) => store.insert(r));
    this.claim = new TurnBatch((r) => store.claim(r));
    this.renew = new TurnBatch((r) => store.renew(r));
    this.finish = new TurnBatch((r) => store.finish(r));
    this.#published = new TurnBatch(async (marks) => {
      await store.markPublished(marks);
      return marks.map(() => undefined);
    });
  }

  /** Marks a generation published, off the caller's path: a lost mark only lets the sweeper publish a duplicate, which the claim drops. */
  published(id: string, gen: number, onError: (error: unknown) => void): void {
    this.#published.add({ id, gen }).catch(onError);
  }
}

/** Checks the `store` option of a client, worker or admin: undefined, or a store that can pair with `brokerName`. */
export function storeOption(store: unknown, brokerName: string): JobStore | undefined {
  if (store === undefined) return undefined;
  const s = store as JobStore | null;
  if (typeof s !== "object" || s === null || typeof s.claim !== "function" || typeof s.insert !== "function") {
    throw new InvalidOptionsError("store", "expected a job store (createMemoryStore, createRedisStore, …)");
  }
  if (s.capabilities?.inProcess === true && brokerName !== "memory") {
    throw new InvalidOptionsError(
      "store",
      `the ${s.name} store keeps records in this process only and pairs with the memory broker; with ${brokerName}, use a networked store (createRedisStore from @jobs/redis)`,
    );
  }
  return s;
}

/** The error of a store-only feature used without a store. */
export function needsStore(what: string): UnsupportedError {
  return new UnsupportedError(
    `[jobs] ${what} needs a job store: pass \`store\` (createMemoryStore from @jobs/memory, createRedisStore from @jobs/redis) to createClient and createWorker`,
  );
}
