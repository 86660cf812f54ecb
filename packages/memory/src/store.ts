/**
 * The JobStore contract in process memory: records in a Map (insertion order is enqueue order),
 * each operation one synchronous step, so every compare-and-set is atomic by construction. It
 * pairs with the memory broker only (core refuses another: records would die with the process
 * while the broker kept the messages).
 */
import {
  type CancelOutcome,
  type ClaimOutcome,
  type ClaimRequest,
  type FinishRequest,
  type InsertOutcome,
  type JobStatus,
  type JobStore,
  type ListPage,
  type ListQuery,
  type NewJobRecord,
  type PruneRequest,
  type RenewOutcome,
  type RenewRequest,
  RUNNABLE_STATUSES,
  type StoreCapabilities,
  StoreClosedError,
  type StoredJob,
  TERMINAL_STATUSES,
  type TransitionRequest,
} from "@jobs/core/adapter";

/** What the memory store does. */
export const memoryStoreCapabilities: StoreCapabilities = { notify: true, inProcess: true, durable: false };

/** A record as the store keeps it: every field present from the start (undefined when absent), so every row has one shape. */
type Row = { -readonly [K in keyof StoredJob]-?: StoredJob[K] | (undefined extends StoredJob[K] ? undefined : never) } & {
  seq: number;
};

/** The optional fields of a record, absent (undefined) in a new row. */
const OPTIONAL = ["metadataJson", "traceJson", "worker", "startedAt", "finishedAt", "resultJson", "progressJson", "errorJson"] as const;

/**
 * What the memory store offers the memory broker for fusion (symbol-keyed, not public API): the
 * claim and the finish as synchronous steps, so a fused delivery is claimed as it is handed out and
 * its success is finished with its ack (src/consumer.ts).
 */
export interface MemoryFusion {
  claimNow(request: ClaimRequest): ClaimOutcome;
  finishNow(request: FinishRequest): boolean;
}

export const kMemoryFusion: unique symbol = Symbol.for("@jobs/memory/fusion");

/** The memory store: the JobStore contract plus a count for tests. */
export interface MemoryStore extends JobStore {
  /** Records held now. */
  readonly size: number;
  /** @internal */
  readonly [kMemoryFusion]: MemoryFusion;
}

const runnable = new Set<JobStatus>(RUNNABLE_STATUSES);
const terminal = new Set<JobStatus>(TERMINAL_STATUSES);

/** Creates an in-process job store (pair it with `createMemoryBroker`). */
export function createMemoryStore(): MemoryStore {
  const rows = new Map<string, Row>();
  const leases = new Map<string, { owner: string; expiresAt: number }>();
  const watchers = new Set<(id: string, status: JobStatus) => void>();
  /** Finished rows per status, then name, in finish order (prune reads from the oldest). */
  const finished = new Map<JobStatus, Map<string, Map<string, Row>>>();
  /** Rows whose current generation is unpublished (the sweeper's query scans these only). */
  const unpublishedRows = new Set<Row>();
  let seq = 0;
  let closed = false;

  function open(): void {
    if (closed) throw new StoreClosedError("[jobs] [memory] store is closed");
  }

  /** The finished rows of one status and job name (made on first use). */
  function finishedOf(status: JobStatus, name: string): Map<string, Row> {
    let byName = finished.get(status);
    if (byName === undefined) {
      byName = new Map();
      finished.set(status, byName);
    }
    let index = byName.get(name);
    if (index === undefined) {
      index = new Map();
      byName.set(name, index);
    }
    return index;
  }

  /** Every status change goes through here, so the finished index and the watchers stay right. */
  function setStatus(row: Row, status: JobStatus, now: number): void {
    if (terminal.has(row.status)) finished.get(row.status)?.get(row.name)?.delete(row.id);
    row.status = status;
    if (!terminal.has(status)) {
      row.finishedAt = undefined;
      return;
    }
    row.finishedAt = now;
    finishedOf(status, row.name).set(row.id, row);
    if (watchers.size > 0) for (const w of watchers) w(row.id, status);
  }

  function setPublished(row: Row, published: boolean): void {
    row.published = published;
    if (published) unpublishedRows.delete(row);
    else unpublishedRows.add(row);
  }

  /** The record as the contract returns it: optional fields only when present. */
  function copy(row: Row): StoredJob {
    const { seq: _, ...all } = row;
    const job: Record<string, unknown> = { ...all, tags: [...row.tags] };
    for (const field of OPTIONAL) if (job[field] === undefined) delete job[field];
    return job as unknown as StoredJob;
  }

  /** Runs `fn` as one step; resolves on the next microtask like a networked store (never synchronously). */
  function step<T>(fn: () => T): Promise<T> {
    try {
      open();
      return Promise.resolve(fn());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  function claimOne(c: ClaimRequest, now: number): ClaimOutcome {
    const row = rows.get(c.id);
    if (row === undefined || row.gen !== c.gen || terminal.has(row.status)) {
      return row === undefined ? { outcome: "stale" } : { outcome: "stale", status: row.status };
    }
    if (row.status === "active" && row.claimExpiresAt > now) return { outcome: "busy", retryInMs: row.claimExpiresAt - now };
    if (row.status !== "active" && !runnable.has(row.status)) return { outcome: "stale", status: row.status };
    row.status = "active";
    row.fence++;
    row.claims++;
    row.claimExpiresAt = now + c.ttlMs;
    row.worker = c.worker;
    row.startedAt = now;
    row.updatedAt = now;
    return { outcome: "claimed", fence: row.fence, claims: row.claims, cancelRequested: row.cancelRequested };
  }

  function finishOne(f: FinishRequest, now: number): boolean {
    const row = rows.get(f.id);
    if (row === undefined || row.status !== "active" || row.fence !== f.fence) return false;
    row.updatedAt = now;
    row.claimExpiresAt = 0;
    row.cancelRequested = false;
    switch (f.status) {
      case "waiting":
        row.status = "waiting";
        row.claims = Math.max(0, row.claims - 1);
        return true;
      case "retrying":
        row.status = "retrying";
        row.gen++;
        setPublished(row, false);
        row.claims = 0;
        if (f.attempt !== undefined) row.attempt = f.attempt;
        if (f.runAt !== undefined) row.runAt = f.runAt;
        if (f.errorJson !== undefined) row.errorJson = f.errorJson;
        return true;
      default:
        if (f.resultJson !== undefined) row.resultJson = f.resultJson;
        if (f.errorJson !== undefined) row.errorJson = f.errorJson;
        setStatus(row, f.status, now);
        return true;
    }
  }

  const store: MemoryStore = {
    name: "memory",
    capabilities: memoryStoreCapabilities,
    get size() {
      return rows.size;
    },
    insert: (records: readonly NewJobRecord[]) =>
      step(() => {
        const now = Date.now();
        return records.map((r): InsertOutcome => {
          if (rows.has(r.id)) return "exists";
          const row: Row = {
            id: r.id,
            name: r.name,
            queue: r.queue,
            status: r.status,
            attempt: r.attempt,
            maxAttempts: r.maxAttempts,
            priority: r.priority,
            tags: [...r.tags],
            metadataJson: r.metadataJson,
            traceJson: r.traceJson,
            payloadJson: r.payloadJson,
            enqueuedAt: r.enqueuedAt,
            runAt: r.runAt,
            timeout: r.timeout,
            gen: r.gen,
            worker: undefined,
            startedAt: undefined,
            finishedAt: undefined,
            resultJson: undefined,
            progressJson: undefined,
            errorJson: undefined,
            fence: 0,
            claims: 0,
            claimExpiresAt: 0,
            published: false,
            cancelRequested: false,
            updatedAt: now,
            seq: ++seq,
          };
          rows.set(r.id, row);
          unpublishedRows.add(row);
          return "inserted";
        });
      }),
    markPublished: (marks) =>
      step(() => {
        for (const m of marks) {
          const row = rows.get(m.id);
          if (row !== undefined && row.gen === m.gen) setPublished(row, true);
        }
      }),
    claim: (requests: readonly ClaimRequest[]) =>
      step(() => {
        const now = Date.now();
        return requests.map((c) => claimOne(c, now));
      }),
    [kMemoryFusion]: {
      claimNow: (request) => {
        open();
        return claimOne(request, Date.now());
      },
      finishNow: (request) => {
        open();
        return finishOne(request, Date.now());
      },
    },
    renew: (requests: readonly RenewRequest[]) =>
      step(() => {
        const now = Date.now();
        return requests.map((r): RenewOutcome => {
          const row = rows.get(r.id);
          if (row === undefined || row.status !== "active" || row.fence !== r.fence) return { ok: false };
          row.claimExpiresAt = now + r.ttlMs;
          row.updatedAt = now;
          return { ok: true, cancelRequested: row.cancelRequested };
        });
      }),
    finish: (requests: readonly FinishRequest[]) =>
      step(() => {
        const now = Date.now();
        return requests.map((f) => finishOne(f, now));
      }),
    progress: (id, fence, progressJson) =>
      step(() => {
        const row = rows.get(id);
        if (row === undefined || row.status !== "active" || row.fence !== fence) return false;
        row.progressJson = progressJson;
        row.updatedAt = Date.now();
        return true;
      }),
    transition: (t: TransitionRequest) =>
      step(() => {
        const row = rows.get(t.id);
        if (row === undefined || !t.from.includes(row.status) || (t.gen !== undefined && row.gen !== t.gen)) return undefined;
        const now = Date.now();
        row.updatedAt = now;
        row.claimExpiresAt = 0;
        if (t.bumpGen === true) {
          row.gen++;
          setPublished(row, false);
          row.claims = 0;
          row.cancelRequested = false;
          if (t.attempt !== undefined) row.attempt = t.attempt;
        }
        if (t.runAt !== undefined) row.runAt = t.runAt;
        setStatus(row, t.to, now);
        return copy(row);
      }),
    cancel: (id) =>
      step((): CancelOutcome => {
        const row = rows.get(id);
        if (row === undefined) return { outcome: "not-found" };
        if (terminal.has(row.status)) return { outcome: "finished", status: row.status };
        const now = Date.now();
        row.updatedAt = now;
        if (row.status === "active") {
          row.cancelRequested = true;
          return { outcome: "cancel-requested" };
        }
        setStatus(row, "cancelled", now);
        return { outcome: "cancelled" };
      }),
    get: (id) =>
      step(() => {
        const row = rows.get(id);
        return row === undefined ? undefined : copy(row);
      }),
    list: (q: ListQuery) =>
      step((): ListPage => {
        const after = q.cursor === undefined ? 0 : Number(q.cursor);
        const jobs: StoredJob[] = [];
        let last: Row | undefined;
        for (const row of rows.values()) {
          if (row.seq <= after) continue;
          if (q.queue !== undefined && row.queue !== q.queue) continue;
          if (q.name !== undefined && row.name !== q.name) continue;
          if (q.status !== undefined && row.status !== q.status) continue;
          if (q.tag !== undefined && !row.tags.includes(q.tag)) continue;
          if (jobs.length === q.limit) return { jobs, cursor: String(last?.seq) };
          jobs.push(copy(row));
          last = row;
        }
        return { jobs };
      }),
    unpublished: (olderThanMs, limit) =>
      step(() => {
        const before = Date.now() - olderThanMs;
        const found: Row[] = [];
        for (const row of unpublishedRows) {
          if (runnable.has(row.status) && row.updatedAt <= before) found.push(row);
        }
        // Oldest first means longest unchanged (the age this query filters on), not first inserted:
        // a retry writes an old record's new gen now.
        found.sort((a, b) => a.updatedAt - b.updatedAt || a.seq - b.seq);
        return found.slice(0, limit).map(copy);
      }),
    prune: (p: PruneRequest) =>
      step(() => {
        const index = finished.get(p.status)?.get(p.name);
        if (index === undefined) return 0;
        const before = p.olderThanMs === undefined ? Number.NEGATIVE_INFINITY : Date.now() - p.olderThanMs;
        // The index is in finish order: remove from the oldest while a rule selects it (past the
        // newest `keep`, or finished before `before`); the first one neither selects ends the pass.
        let over = p.keep === undefined ? 0 : Math.max(0, index.size - p.keep);
        let removed = 0;
        for (const row of index.values()) {
          if (removed === p.limit || (over === 0 && (row.finishedAt ?? 0) >= before)) break;
          index.delete(row.id);
          rows.delete(row.id);
          unpublishedRows.delete(row);
          if (over > 0) over--;
          removed++;
        }
        return removed;
      }),
    lease: (name, owner, ttlMs) =>
      step(() => {
        const now = Date.now();
        const held = leases.get(name);
        if (held !== undefined && held.owner !== owner && held.expiresAt > now) return false;
        leases.set(name, { owner, expiresAt: now + ttlMs });
        return true;
      }),
    watch: (listener) =>
      step(() => {
        watchers.add(listener);
        return () => {
          watchers.delete(listener);
        };
      }),
    close: () => {
      closed = true;
      watchers.clear();
      return Promise.resolve();
    },
  };
  return store;
}
