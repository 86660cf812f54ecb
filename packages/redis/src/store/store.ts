/**
 * `createRedisStore`: the JobStore contract on Redis. A thin translation: each operation is one
 * Lua script (a batch is one call for the whole array), timestamps come from the server's clock
 * (`TIME` inside the script), and every key of a store shares one hash tag (keys.ts). The
 * connection is the broker's (reconnects, first-connection bound, refused logins, heartbeats).
 */
import {
  type BrokerEventMap,
  brokerEvents,
  type CancelOutcome,
  type ClaimOutcome,
  type ClaimRequest,
  type Emitter,
  type FinishRequest,
  type InsertOutcome,
  InvalidOptionsError,
  isAuthFailure,
  JOB_STATUSES,
  type JobStatus,
  type JobStore,
  JobsError,
  type ListPage,
  type ListQuery,
  type NewJobRecord,
  type On,
  type PruneRequest,
  type RenewOutcome,
  type RenewRequest,
  RequestTimeoutError,
  redactedCause,
  redactedMessage,
  type StoreCapabilities,
  StoreClosedError,
  StoreConnectionError,
  type StoredJob,
  serializeError,
  TERMINAL_STATUSES,
  type TransitionRequest,
  withTimeout,
} from "@jobs/core/adapter";
import type { Redis } from "ioredis";
import { RedisConnection } from "../connection.js";
import { type FusionSource, kFusion, probeKey } from "../fusion.js";
import { registerScripts, type ScriptRunner, type ScriptSet } from "../internal/scripts.js";
import type { RedisSettings } from "../options.js";
import { decodeRecord, finishArgs, insertArgs, opt, requestToken } from "./codec.js";
import { storeConfigWarnings } from "./durability.js";
import { type RedisStoreKeys, redisStoreKeys } from "./keys.js";
import { type RedisStoreOptions, resolveRedisStoreOptions } from "./options.js";

/** What the Redis store does: it tells every process of a finished job (PUBLISH), and survives a restart with AOF on. */
export const redisStoreCapabilities: StoreCapabilities = { notify: true, inProcess: false, durable: true };

/** Events a Redis store reports about its connection: the broker's (`config-warning`, `disconnected`, …). */
export type RedisStoreEventMap = BrokerEventMap;

/** The Redis store: the JobStore contract, `watch` always there, and its connection's events. */
export interface RedisStore extends JobStore {
  /** Subscribe to `config-warning` (durability window, eviction), `insecure-connection`, `disconnected`, `reconnected`, `error`. */
  readonly on: On<RedisStoreEventMap>;
  watch(listener: (id: string, status: JobStatus) => void): Promise<() => void>;
}

type StoreScript =
  | "insert"
  | "published"
  | "claim"
  | "renew"
  | "finish"
  | "progress"
  | "transition"
  | "cancel"
  | "list"
  | "unpublished"
  | "prune"
  | "lease";

/** The store's scripts (lua/store/), each taking one key: the store's base. */
const STORE_SCRIPTS: ScriptSet<StoreScript> = {
  keys: {
    insert: 1,
    published: 1,
    claim: 1,
    renew: 1,
    finish: 1,
    progress: 1,
    transition: 1,
    cancel: 1,
    list: 1,
    unpublished: 1,
    prune: 1,
    lease: 1,
  },
  dir: "store/",
  command: "jobs_store_",
  prelude: ["store/common"],
  header: "local STORE_BASE = KEYS[1]",
};

/** Most index entries one `list` or `unpublished` call reads: the bound of a script's work (Redis runs one script at a time). */
export const SCAN_BUDGET = 5000;

const STATUSES = new Set<string>(JOB_STATUSES);
const TERMINAL = new Set<string>(TERMINAL_STATUSES);
const FINISH_STATUSES = new Set<string>(["succeeded", "retrying", "dead", "cancelled", "waiting"]);

/** Creates a job store on Redis (ioredis); see docs/adapters/redis.md, "The Redis store". */
export function createRedisStore(options: RedisStoreOptions = {}): RedisStore {
  return new RedisJobStore(options);
}

class RedisJobStore implements RedisStore {
  readonly name: string = "redis";
  readonly capabilities: StoreCapabilities = redisStoreCapabilities;
  readonly on: On<RedisStoreEventMap>;
  readonly #settings: RedisSettings;
  readonly #events: Emitter<RedisStoreEventMap>;
  readonly #connection: RedisConnection;
  readonly #run: ScriptRunner<StoreScript>;
  readonly #keys: RedisStoreKeys;
  readonly #watchers = new Set<(id: string, status: JobStatus) => void>();
  #subscriber: Promise<Redis> | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: RedisStoreOptions) {
    this.#settings = resolveRedisStoreOptions(options);
    this.#keys = redisStoreKeys(this.#settings.prefix);
    this.#events = brokerEvents("redis", options.logger);
    this.on = this.#events.on;
    const store = this;
    this.#connection = new RedisConnection(this.#settings, this.#events, {
      get closed() {
        return store.#closed;
      },
      reconnected: () => {},
      configWarnings: storeConfigWarnings,
    });
    this.#run = registerScripts(this.#connection.command, STORE_SCRIPTS);
  }

  /** For the Redis broker's fusion (src/fusion.ts). */
  get [kFusion](): FusionSource {
    const command = this.#connection.command;
    const base = this.#keys.base;
    return {
      base,
      cluster: command.isCluster,
      probe: async (token) => {
        await this.#call("probe", () => command.set(probeKey(base), token, "PX", 60_000));
      },
    };
  }

  /**
   * Runs `work` once connected, bounded by the request timeout. Before the first connection a call
   * waits for it (at most `connectTimeout`) and fails definitely if it does not come: nothing is
   * queued meanwhile. Every failure is a `StoreConnectionError` (or `StoreClosedError`).
   */
  async #call<T>(what: string, work: () => Promise<T>): Promise<T> {
    if (this.#closed) throw closedError();
    if (!this.#connection.everConnected) {
      try {
        await this.#connection.whenConnected();
      } catch (error) {
        throw this.#closed ? closedError() : storeError(what, error);
      }
      if (this.#closed) throw closedError();
    }
    try {
      return await withTimeout(work(), this.#settings.requestTimeoutMs);
    } catch (error) {
      throw this.#closed ? closedError() : storeError(what, error);
    }
  }

  #script(name: StoreScript, args: readonly (string | number)[]): Promise<unknown> {
    return this.#call(name, () => this.#run(name, [this.#keys.base], args));
  }

  async insert(records: readonly NewJobRecord[]): Promise<InsertOutcome[]> {
    if (records.length === 0) return this.#empty([]);
    const reply = (await this.#script("insert", records.flatMap(insertArgs))) as number[];
    return reply.map((r) => (r === 1 ? "inserted" : "exists"));
  }

  async markPublished(marks: readonly { readonly id: string; readonly gen: number }[]): Promise<void> {
    if (marks.length === 0) return this.#empty(undefined);
    await this.#script(
      "published",
      marks.flatMap((m) => [m.id, m.gen]),
    );
  }

  async claim(requests: readonly ClaimRequest[]): Promise<ClaimOutcome[]> {
    if (requests.length === 0) return this.#empty([]);
    const args = requests.flatMap((c) => [c.id, c.gen, ttl(c.ttlMs), c.worker, requestToken()]);
    const reply = (await this.#script("claim", args)) as [string, number?, number?, number?][];
    return reply.map(([outcome, a, b, c]): ClaimOutcome => {
      if (outcome === "claimed") return { outcome, fence: a as number, claims: b as number, cancelRequested: c === 1 };
      if (outcome === "busy") return { outcome, retryInMs: a as number };
      const status = (a as unknown as JobStatus | undefined) ?? undefined;
      return status === undefined ? { outcome: "stale" } : { outcome: "stale", status };
    });
  }

  async renew(requests: readonly RenewRequest[]): Promise<RenewOutcome[]> {
    if (requests.length === 0) return this.#empty([]);
    const args = requests.flatMap((r) => [r.id, r.fence, ttl(r.ttlMs)]);
    const reply = (await this.#script("renew", args)) as [number, number?][];
    return reply.map(
      ([ok, cancelRequested]): RenewOutcome => (ok === 1 ? { ok: true, cancelRequested: cancelRequested === 1 } : { ok: false }),
    );
  }

  async finish(requests: readonly FinishRequest[]): Promise<boolean[]> {
    if (requests.length === 0) return this.#empty([]);
    for (const f of requests) {
      if (!FINISH_STATUSES.has(f.status)) throw new InvalidOptionsError("status", `expected one of ${[...FINISH_STATUSES].join(", ")}`);
    }
    const reply = (await this.#script("finish", requests.flatMap(finishArgs))) as number[];
    return reply.map((r) => r === 1);
  }

  async progress(id: string, fence: number, progressJson: string): Promise<boolean> {
    return (await this.#script("progress", [id, fence, progressJson])) === 1;
  }

  async transition(t: TransitionRequest): Promise<StoredJob | undefined> {
    for (const status of [t.to, ...t.from]) {
      if (!STATUSES.has(status))
        throw new InvalidOptionsError("status", `expected one of ${JOB_STATUSES.join(", ")}, got ${String(status)}`);
    }
    if (t.from.length === 0) return this.#empty(undefined);
    const args = [t.id, opt(t.gen), t.to, t.bumpGen === true ? "1" : "0", opt(t.attempt), opt(t.runAt), ...t.from];
    const reply = (await this.#script("transition", args)) as string[] | null;
    return reply === null ? undefined : decodeRecord(reply);
  }

  async cancel(id: string): Promise<CancelOutcome> {
    const [outcome, status] = (await this.#script("cancel", [id])) as [CancelOutcome["outcome"], JobStatus?];
    return outcome === "finished" ? { outcome, status: status as JobStatus } : ({ outcome } as CancelOutcome);
  }

  async get(id: string): Promise<StoredJob | undefined> {
    const hash = await this.#call("get", () => this.#connection.command.hgetall(this.#keys.job(id)));
    return Object.keys(hash).length === 0 ? undefined : decodeRecord(hash);
  }

  async list(q: ListQuery): Promise<ListPage> {
    if (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > 1000) {
      throw new InvalidOptionsError("limit", `expected an integer from 1 to 1000, got ${String(q.limit)}`);
    }
    if (q.cursor !== undefined && !/^\d{1,15}$/.test(q.cursor)) {
      throw new InvalidOptionsError("cursor", "expected the cursor of a previous page");
    }
    if (q.status !== undefined && !STATUSES.has(q.status)) {
      throw new InvalidOptionsError("status", `expected one of ${JOB_STATUSES.join(", ")}, got ${String(q.status)}`);
    }
    const indexes: string[] = [];
    if (q.queue !== undefined) indexes.push(`queue:${q.queue}`);
    if (q.name !== undefined) indexes.push(`name:${q.name}`);
    if (q.tag !== undefined) indexes.push(`tag:${q.tag}`);
    const [cursor, ...records] = (await this.#script("list", [q.cursor ?? "0", q.limit, SCAN_BUDGET, opt(q.status), ...indexes])) as [
      string,
      ...string[][],
    ];
    const jobs = records.map(decodeRecord);
    return cursor === "" ? { jobs } : { jobs, cursor };
  }

  async unpublished(olderThanMs: number, limit: number): Promise<StoredJob[]> {
    if (!(olderThanMs >= 0)) throw new InvalidOptionsError("olderThanMs", `expected a duration in ms, got ${String(olderThanMs)}`);
    if (!Number.isInteger(limit) || limit < 1) throw new InvalidOptionsError("limit", `expected a positive integer, got ${String(limit)}`);
    const reply = (await this.#script("unpublished", [Math.floor(olderThanMs), limit, SCAN_BUDGET])) as string[][];
    return reply.map(decodeRecord);
  }

  async prune(p: PruneRequest): Promise<number> {
    if (!TERMINAL.has(p.status))
      throw new InvalidOptionsError("status", `expected one of ${TERMINAL_STATUSES.join(", ")}, got ${String(p.status)}`);
    if (!Number.isInteger(p.limit) || p.limit < 1)
      throw new InvalidOptionsError("limit", `expected a positive integer, got ${String(p.limit)}`);
    if (p.keep !== undefined && (!Number.isInteger(p.keep) || p.keep < 0)) {
      throw new InvalidOptionsError("keep", `expected a whole number, got ${String(p.keep)}`);
    }
    if (p.olderThanMs !== undefined && !(p.olderThanMs >= 0)) {
      throw new InvalidOptionsError("olderThanMs", `expected a duration in ms, got ${String(p.olderThanMs)}`);
    }
    const args = [p.name, p.status, opt(p.olderThanMs === undefined ? undefined : Math.floor(p.olderThanMs)), opt(p.keep), p.limit];
    return (await this.#script("prune", args)) as number;
  }

  async lease(name: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.#script("lease", [name, owner, ttl(ttlMs)])) === 1;
  }

  async watch(listener: (id: string, status: JobStatus) => void): Promise<() => void> {
    await this.#call("watch", () => this.#subscribe());
    if (this.#closed) throw closedError();
    this.#watchers.add(listener);
    return () => {
      this.#watchers.delete(listener);
    };
  }

  /** The subscriber connection (one per store, shared by every listener), subscribed to the `finished` channel. */
  #subscribe(): Promise<Redis> {
    if (this.#subscriber === undefined) {
      const redis = this.#connection.connect("subscriber");
      redis.on("message", (channel: string, message: string) => {
        if (channel !== this.#keys.finished) return;
        const space = message.indexOf(" ");
        const status = message.slice(0, space) as JobStatus;
        const id = message.slice(space + 1);
        for (const listener of this.#watchers) {
          try {
            listener(id, status);
          } catch (error) {
            this.#events.emit("error", { error: serializeError(error) });
          }
        }
      });
      this.#subscriber = redis.subscribe(this.#keys.finished).then(
        () => redis,
        (error: unknown) => {
          this.#subscriber = undefined;
          redis.disconnect();
          throw error;
        },
      );
    }
    return this.#subscriber;
  }

  /** The answer of an empty batch: nothing to send, but a closed store still says so. */
  #empty<T>(value: T): Promise<T> {
    return this.#closed ? Promise.reject(closedError()) : Promise.resolve(value);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#watchers.clear();
    await this.#connection.close(); // the subscriber too
  }
}

/** A time to live in whole ms (PX and the claim's expiry), checked. */
function ttl(ms: number): number {
  if (!(ms > 0) || !Number.isFinite(ms)) throw new InvalidOptionsError("ttlMs", `expected a positive number of ms, got ${String(ms)}`);
  return Math.ceil(ms);
}

function closedError(): StoreClosedError {
  return new StoreClosedError("[jobs] [redis] store is closed");
}

/** A `StoreConnectionError` (credentials redacted) for whatever a call failed with: non-retryable when Redis refused the credentials. */
function storeError(what: string, error: unknown): JobsError {
  if (JobsError.isInstance(error)) {
    if (error.code === "broker-connection")
      return new StoreConnectionError(error.message, { cause: error.cause, retryable: error.retryable });
    if (error.code === "broker-closed") return closedError();
    return error;
  }
  if (error instanceof RequestTimeoutError) {
    return new StoreConnectionError(`[jobs] [redis] store ${what}: no reply within ${error.timeoutMs} ms (a write may still be applied)`, {
      cause: redactedCause(error),
    });
  }
  return new StoreConnectionError(`[jobs] [redis] store ${what}: ${redactedMessage(error)}`, {
    cause: redactedCause(error),
    retryable: !isAuthFailure(error),
  });
}
