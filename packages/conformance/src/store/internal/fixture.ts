/**
 * What every store case shares: the store's capabilities (probed once per options object), time
 * limits scaled by `timeScale`, case registration that honours `skip`, store instances closed when
 * the case ends, and record builders and assertions written once.
 */
import { randomUUID } from "node:crypto";
import { InvalidOptionsError } from "@jobs/core";
import type { ClaimOutcome, ClaimRequest, FinishRequest, JobStore, NewJobRecord, StoreCapabilities, StoredJob } from "@jobs/core/adapter";
import { waitFor } from "@jobs/core/testing";
import { describe, expect, it, onTestFinished } from "vitest";
import { capabilityProbe } from "../../internal/probe.js";
import type { StoreConformanceOptions, StoreFactory } from "../options.js";

/** Time limits and durations of one suite run, in ms. */
export interface StoreTiming {
  /** `base` ms scaled by `timeScale`, rounded up. */
  ms(base: number): number;
  /** A claim or lease that runs out during a case. */
  readonly shortTtl: number;
  /** A claim or lease no case outlives. */
  readonly longTtl: number;
  /** How long to wait for something that must happen. */
  readonly wait: number;
  /** vitest timeout of one case. */
  readonly testTimeout: number;
}

/** Builds the suite's time limits from the options. */
export function storeTimingOf(options: StoreConformanceOptions): StoreTiming {
  const scale = options.timeScale ?? 1;
  const ms = (base: number): number => Math.max(1, Math.ceil(base * scale));
  return { ms, shortTtl: ms(300), longTtl: ms(60_000), wait: ms(5_000), testTimeout: ms(30_000) };
}

/** Throws `InvalidOptionsError` for options the store suite cannot run with. */
export function assertStoreConformanceOptions(options: StoreConformanceOptions): void {
  if (typeof options !== "object" || options === null) throw new InvalidOptionsError("options", "expected an options object");
  if (typeof options.name !== "string" || options.name === "") throw new InvalidOptionsError("name", "expected a non-empty string");
  if (typeof options.createStore !== "function") throw new InvalidOptionsError("createStore", "expected a function");
  const scale = options.timeScale;
  if (scale !== undefined && !(Number.isFinite(scale) && scale > 0)) {
    throw new InvalidOptionsError("timeScale", `expected a positive number, got ${String(scale)}`);
  }
  if (options.skip !== undefined && !(Array.isArray(options.skip) && options.skip.every((s) => typeof s === "string"))) {
    throw new InvalidOptionsError("skip", "expected an array of case names");
  }
  const restart = options.restart;
  if (restart !== undefined) {
    for (const field of ["createStore", "kill", "start"] as const) {
      if (typeof restart?.[field] !== "function") throw new InvalidOptionsError(`restart.${field}`, "expected a function");
    }
  }
}

const probeStore = capabilityProbe((factory: StoreFactory) => factory());

/** The store's capabilities, read from one throw-away instance (once per factory). */
export function storeCapabilitiesOf(factory: StoreFactory): Promise<StoreCapabilities> {
  return probeStore(factory);
}

/** Case titles registered per options object, to check `skip` names real cases. */
const registered = new WeakMap<StoreConformanceOptions, Set<string>>();

/** The case titles registered so far for `options`. */
export function registeredCases(options: StoreConformanceOptions): ReadonlySet<string> {
  return registered.get(options) ?? new Set();
}

/** What a group's body gets. */
export interface StoreGroupEnv {
  /** The store's declared capabilities. */
  readonly caps: StoreCapabilities;
  /** Time limits of this run. */
  readonly t: StoreTiming;
  /** Registers a case (reported as skipped when its title is in `options.skip`). */
  readonly storeCase: (title: string, body: () => Promise<void>) => void;
  /** A new instance from `factory` (default `options.createStore`), closed when the case ends. */
  readonly open: (factory?: StoreFactory) => Promise<JobStore>;
  /**
   * Two instances that see each other's records, closed when the case ends: two from the factory,
   * or one instance twice when the store is `inProcess` (its instances share nothing).
   */
  readonly openTwo: () => Promise<readonly [JobStore, JobStore]>;
}

/**
 * Registers one group: a describe block whose cases are collected once the store's capabilities are
 * known (vitest awaits async describe factories), so gates can use `describe.skipIf`.
 */
export function storeGroup(options: StoreConformanceOptions, title: string, body: (env: StoreGroupEnv) => void): void {
  assertStoreConformanceOptions(options);
  let titles = registered.get(options);
  if (titles === undefined) {
    titles = new Set();
    registered.set(options, titles);
  }
  const seen = titles;
  const skip = new Set(options.skip ?? []);
  describe(title, async () => {
    const caps = await storeCapabilitiesOf(options.createStore);
    const t = storeTimingOf(options);
    const storeCase = (caseTitle: string, caseBody: () => Promise<void>): void => {
      if (seen.has(caseTitle)) throw new Error(`[jobs] store suite: two cases are titled "${caseTitle}"`);
      seen.add(caseTitle);
      it.skipIf(skip.has(caseTitle))(caseTitle, caseBody, t.testTimeout);
    };
    const open = async (factory: StoreFactory = options.createStore): Promise<JobStore> => {
      const store = await factory();
      onTestFinished(() => store.close());
      return store;
    };
    const openTwo = async (): Promise<readonly [JobStore, JobStore]> => {
      const first = await open();
      return [first, caps.inProcess ? first : await open()];
    };
    body({ caps, t, storeCase, open, openTwo });
  });
}

/** A new record with a fresh id: `waiting`, gen 1, attempt 1 of 3, enqueued now; `fields` override. */
export function newRecord(fields: Partial<NewJobRecord> = {}): NewJobRecord {
  const now = Date.now();
  return {
    id: randomUUID(),
    name: "cf-store-job",
    queue: "cf-store",
    status: "waiting",
    attempt: 1,
    maxAttempts: 3,
    priority: "normal",
    tags: [],
    payloadJson: '{"n":1}',
    enqueuedAt: now,
    runAt: now,
    timeout: 30_000,
    gen: 1,
    ...fields,
  };
}

/** `cf-<tag>-<random>`: a queue, name or tag no other case (or run) uses. */
export function uniqueName(tag: string): string {
  return `cf-${tag}-${randomUUID().slice(0, 8)}`;
}

/** Inserts records one call each, in order, expecting every one new; returns them. */
export async function insertAll(store: JobStore, ...records: NewJobRecord[]): Promise<NewJobRecord[]> {
  for (const record of records) expect(await store.insert([record])).toEqual(["inserted"]);
  return records;
}

/** Inserts one new record (fields as `newRecord`) and returns it. */
export async function inserted(store: JobStore, fields: Partial<NewJobRecord> = {}): Promise<NewJobRecord> {
  const [record] = await insertAll(store, newRecord(fields));
  return record!;
}

/** The record, failing the case when it is missing. */
export async function mustGet(store: JobStore, id: string): Promise<StoredJob> {
  const job = await store.get(id);
  expect(job, `record ${id} is missing`).toBeDefined();
  return job!;
}

/** One claim. */
export async function claimOne(store: JobStore, request: ClaimRequest): Promise<ClaimOutcome> {
  const outcomes = await store.claim([request]);
  expect(outcomes).toHaveLength(1);
  return outcomes[0]!;
}

/** One claim that must succeed; returns its fence. */
export async function claimed(store: JobStore, id: string, ttlMs: number, fields: Partial<ClaimRequest> = {}): Promise<number> {
  const outcome = await claimOne(store, { id, gen: 1, ttlMs, worker: "cf-worker-1", ...fields });
  expect(outcome.outcome).toBe("claimed");
  return (outcome as Extract<ClaimOutcome, { outcome: "claimed" }>).fence;
}

/** One finish; returns whether it committed. */
export async function finishOne(store: JobStore, request: FinishRequest): Promise<boolean> {
  const outcomes = await store.finish([request]);
  expect(outcomes).toHaveLength(1);
  return outcomes[0]!;
}

/**
 * Claims `request` until the claim is no longer `busy` (the holder's claim ran out by the store's
 * clock), polling; returns that outcome. A poll is a claim attempt, never a sleep.
 */
export async function claimAfterExpiry(store: JobStore, request: ClaimRequest, timeout: number): Promise<ClaimOutcome> {
  return waitFor(
    async () => {
      const outcome = await claimOne(store, request);
      return outcome.outcome === "busy" ? undefined : outcome;
    },
    { timeout, message: `the claim of ${request.id} never ran out` },
  );
}

/**
 * Resolves once `witness` (a record claimed for `ttlMs` after the moment of interest) can be taken
 * over: by the store's clock, at least `ttlMs` passed since that moment. Used to show that something
 * outlived a short ttl without sleeping on the local clock.
 */
export async function outlive(store: JobStore, ttlMs: number, timeout: number): Promise<void> {
  const witness = await inserted(store, { name: "cf-witness" });
  await claimed(store, witness.id, ttlMs, { worker: "cf-witness-1" });
  const outcome = await claimAfterExpiry(store, { id: witness.id, gen: 1, ttlMs, worker: "cf-witness-2" }, timeout);
  expect(outcome.outcome).toBe("claimed");
  await finishOne(store, { id: witness.id, fence: 2, status: "cancelled" });
}

/**
 * Resolves once the store's clock is past `after` (ms since the epoch): inserts scratch records
 * until one's `updatedAt` is later, cancelling each so it never shows as unpublished.
 */
export async function storeClockPast(store: JobStore, after: number, timeout: number): Promise<void> {
  await waitFor(
    async () => {
      const scratch = await inserted(store, { name: "cf-clock" });
      const job = await mustGet(store, scratch.id);
      await store.cancel(scratch.id);
      return job.updatedAt > after;
    },
    { timeout, interval: 1, message: `the store's clock never passed ${after}` },
  );
}
