/** Claims: a delivery runs a record only when it is runnable with the delivery's gen; live claims defer, expired ones are taken over. */
import type { ClaimOutcome, JobStatus, JobStore } from "@jobs/core/adapter";
import { expect } from "vitest";
import { claimAfterExpiry, claimed, claimOne, finishOne, inserted, mustGet, newRecord, storeGroup } from "../internal/fixture.js";
import type { StoreConformanceOptions } from "../options.js";

/** Brings a fresh record to a terminal `status` through the contract's own operations; returns its id. */
async function terminalRecord(store: JobStore, status: "succeeded" | "dead" | "cancelled" | "discarded", ttl: number): Promise<string> {
  const record = await inserted(store);
  if (status === "cancelled") {
    expect(await store.cancel(record.id)).toEqual({ outcome: "cancelled" });
  } else if (status === "discarded") {
    expect(await store.transition({ id: record.id, from: ["waiting"], gen: 1, to: "discarded" })).toBeDefined();
  } else {
    const fence = await claimed(store, record.id, ttl);
    expect(await finishOne(store, { id: record.id, fence, status, resultJson: "1" })).toBe(true);
  }
  return record.id;
}

/** Claims: runnable with the right gen → claimed; another gen, terminal or unknown → stale; live claim → busy; expired → takeover. */
export function storeClaims(options: StoreConformanceOptions): void {
  storeGroup(options, "store: claims", ({ t, storeCase, open, openTwo }) => {
    for (const status of ["waiting", "scheduled"] as const) {
      storeCase(`a ${status} record with the delivery's gen is claimed: active, fence 1, claims 1, the claim kept`, async () => {
        const store = await open();
        const record = await inserted(store, { status });
        const outcome = await claimOne(store, { id: record.id, gen: 1, ttlMs: t.longTtl, worker: "cf-w1" });
        expect(outcome).toEqual({ outcome: "claimed", fence: 1, claims: 1, cancelRequested: false });
        const job = await mustGet(store, record.id);
        expect(job).toMatchObject({ status: "active", fence: 1, claims: 1, gen: 1, worker: "cf-w1", attempt: 1 });
        expect(job.startedAt).toBeTypeOf("number");
        expect(job.claimExpiresAt).toBeGreaterThan(job.updatedAt);
        expect(job.claimExpiresAt).toBeLessThanOrEqual(job.updatedAt + t.longTtl);
      });
    }

    storeCase("a retrying record is claimed with its new gen: fence + 1, claims 1", async () => {
      const store = await open();
      const record = await inserted(store);
      const fence = await claimed(store, record.id, t.longTtl);
      expect(await finishOne(store, { id: record.id, fence, status: "retrying", attempt: 2, runAt: Date.now() })).toBe(true);
      const outcome = await claimOne(store, { id: record.id, gen: 2, ttlMs: t.longTtl, worker: "cf-w2" });
      expect(outcome).toEqual({ outcome: "claimed", fence: fence + 1, claims: 1, cancelRequested: false });
      expect(await mustGet(store, record.id)).toMatchObject({ status: "active", gen: 2, attempt: 2, worker: "cf-w2" });
    });

    storeCase("a claim with another gen (older or newer) is stale and changes nothing", async () => {
      const store = await open();
      const record = await inserted(store);
      const newer = await claimOne(store, { id: record.id, gen: 2, ttlMs: t.longTtl, worker: "cf-w1" });
      expect(newer.outcome).toBe("stale");
      expect(await mustGet(store, record.id)).toMatchObject({ status: "waiting", fence: 0, claims: 0 });
      const fence = await claimed(store, record.id, t.longTtl);
      await finishOne(store, { id: record.id, fence, status: "retrying", attempt: 2, runAt: Date.now() });
      const older = await claimOne(store, { id: record.id, gen: 1, ttlMs: t.longTtl, worker: "cf-w2" });
      expect(older.outcome).toBe("stale");
      expect(await mustGet(store, record.id)).toMatchObject({ status: "retrying", gen: 2, fence, claims: 0 });
    });

    for (const status of ["succeeded", "dead", "cancelled", "discarded"] as const) {
      storeCase(`a ${status} record is stale to a claim with its gen, and says its status`, async () => {
        const store = await open();
        const id = await terminalRecord(store, status, t.longTtl);
        const before = await mustGet(store, id);
        const outcome = await claimOne(store, { id, gen: before.gen, ttlMs: t.longTtl, worker: "cf-late" });
        expect(outcome).toEqual({ outcome: "stale", status: status satisfies JobStatus });
        expect(await mustGet(store, id)).toEqual(before);
      });
    }

    storeCase("a claim of an unknown id is stale, without a status", async () => {
      const store = await open();
      const outcome = await claimOne(store, { id: newRecord().id, gen: 1, ttlMs: t.longTtl, worker: "cf-w1" });
      expect(outcome.outcome).toBe("stale");
      expect((outcome as Extract<ClaimOutcome, { outcome: "stale" }>).status).toBeUndefined();
    });

    storeCase("an active record under a live claim is busy, for no longer than the claim's ttl, and stays with its holder", async () => {
      const store = await open();
      const record = await inserted(store);
      await claimed(store, record.id, t.longTtl, { worker: "cf-holder" });
      const outcome = await claimOne(store, { id: record.id, gen: 1, ttlMs: t.longTtl, worker: "cf-other" });
      expect(outcome.outcome).toBe("busy");
      const { retryInMs } = outcome as Extract<ClaimOutcome, { outcome: "busy" }>;
      expect(retryInMs).toBeGreaterThan(0);
      expect(retryInMs).toBeLessThanOrEqual(t.longTtl);
      expect(await mustGet(store, record.id)).toMatchObject({ status: "active", fence: 1, claims: 1, worker: "cf-holder" });
    });

    storeCase("after the claim runs out, a claim takes over: fence + 1, claims + 1, the same attempt", async () => {
      const store = await open();
      const record = await inserted(store);
      await claimed(store, record.id, t.shortTtl, { worker: "cf-paused" });
      const outcome = await claimAfterExpiry(store, { id: record.id, gen: 1, ttlMs: t.longTtl, worker: "cf-taker" }, t.wait);
      expect(outcome).toEqual({ outcome: "claimed", fence: 2, claims: 2, cancelRequested: false });
      expect(await mustGet(store, record.id)).toMatchObject({
        status: "active",
        fence: 2,
        claims: 2,
        attempt: 1,
        gen: 1,
        worker: "cf-taker",
      });
    });

    storeCase("concurrent claims of one record: exactly one is claimed, the others busy", async () => {
      const [s1, s2] = await openTwo();
      const record = await inserted(s1);
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          claimOne(i % 2 === 0 ? s1 : s2, { id: record.id, gen: 1, ttlMs: t.longTtl, worker: `cf-w${i}` }),
        ),
      );
      expect(outcomes.filter((o) => o.outcome === "claimed")).toHaveLength(1);
      expect(outcomes.filter((o) => o.outcome === "busy")).toHaveLength(9);
      const winner = outcomes.findIndex((o) => o.outcome === "claimed");
      expect(await mustGet(s2, record.id)).toMatchObject({ fence: 1, claims: 1, worker: `cf-w${winner}` });
    });

    storeCase("a batch of claims answers in order, one outcome per request", async () => {
      const store = await open();
      const [a, b] = [await inserted(store), await inserted(store)];
      const outcomes = await store.claim([
        { id: newRecord().id, gen: 1, ttlMs: t.longTtl, worker: "cf-w1" },
        { id: a.id, gen: 1, ttlMs: t.longTtl, worker: "cf-w1" },
        { id: b.id, gen: 9, ttlMs: t.longTtl, worker: "cf-w1" },
        { id: a.id, gen: 1, ttlMs: t.longTtl, worker: "cf-w2" },
      ]);
      expect(outcomes.map((o) => o.outcome)).toEqual(["stale", "claimed", "stale", "busy"]);
    });
  });
}
