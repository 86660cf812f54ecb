/** Fences: every worker write is a compare-and-set on the claim's fence; each finish variant writes what the contract says, once. */
import type { FinishRequest } from "@jobs/core/adapter";
import { expect } from "vitest";
import { claimAfterExpiry, claimed, claimOne, finishOne, inserted, mustGet, outlive, storeGroup } from "../internal/fixture.js";
import type { StoreConformanceOptions } from "../options.js";

/** Fences: a taken-over holder's writes are refused; renew extends; each finish variant; at most one finish commits. */
export function storeFences(options: StoreConformanceOptions): void {
  storeGroup(options, "store: fences", ({ t, storeCase, open, openTwo }) => {
    storeCase("after a takeover, the old holder's renew, progress and finish are refused and write nothing", async () => {
      const store = await open();
      const record = await inserted(store);
      const old = await claimed(store, record.id, t.shortTtl, { worker: "cf-paused" });
      const taken = await claimAfterExpiry(store, { id: record.id, gen: 1, ttlMs: t.longTtl, worker: "cf-taker" }, t.wait);
      expect(taken.outcome).toBe("claimed");
      const before = await mustGet(store, record.id);
      expect(await store.renew([{ id: record.id, fence: old, ttlMs: t.longTtl }])).toEqual([{ ok: false }]);
      expect(await store.progress(record.id, old, '"stale progress"')).toBe(false);
      for (const status of ["succeeded", "retrying", "dead", "cancelled", "waiting"] as const) {
        const request: FinishRequest = {
          id: record.id,
          fence: old,
          status,
          resultJson: '"stale"',
          errorJson: '"stale"',
          attempt: 2,
          runAt: 1,
        };
        expect(await finishOne(store, request)).toBe(false);
      }
      expect(await mustGet(store, record.id)).toEqual(before);
      expect(before).toMatchObject({ status: "active", fence: old + 1, worker: "cf-taker" });
      expect(before.progressJson).toBeUndefined();
      expect(before.resultJson).toBeUndefined();
    });

    storeCase("the holder's renew is accepted and extends the claim past its first ttl", async () => {
      const store = await open();
      const record = await inserted(store);
      const fence = await claimed(store, record.id, t.shortTtl);
      expect(await store.renew([{ id: record.id, fence, ttlMs: t.longTtl }])).toEqual([{ ok: true, cancelRequested: false }]);
      // A witness claimed after the renewal ran out: so did the first ttl of this claim.
      await outlive(store, t.shortTtl, t.wait);
      const outcome = await claimOne(store, { id: record.id, gen: 1, ttlMs: t.longTtl, worker: "cf-other" });
      expect(outcome.outcome).toBe("busy");
      expect(await mustGet(store, record.id)).toMatchObject({ status: "active", fence, claims: 1 });
    });

    storeCase("renew and progress of a record never claimed under that fence are refused", async () => {
      const store = await open();
      const record = await inserted(store);
      expect(await store.renew([{ id: record.id, fence: 0, ttlMs: t.longTtl }])).toEqual([{ ok: false }]);
      expect(await store.progress(record.id, 0, "1")).toBe(false);
      expect(await finishOne(store, { id: record.id, fence: 0, status: "succeeded", resultJson: "1" })).toBe(false);
      expect(await mustGet(store, record.id)).toMatchObject({ status: "waiting", fence: 0 });
    });

    storeCase("progress of the holder is kept as its JSON text", async () => {
      const store = await open();
      const record = await inserted(store);
      const fence = await claimed(store, record.id, t.longTtl);
      expect(await store.progress(record.id, fence, '{ "done": 1, "of":3 }')).toBe(true);
      expect(await store.progress(record.id, fence, '{ "done": 2, "of":3 }')).toBe(true);
      expect((await mustGet(store, record.id)).progressJson).toBe('{ "done": 2, "of":3 }');
    });

    storeCase("finish succeeded: terminal with the result, finishedAt set, the claim and cancel request cleared", async () => {
      const store = await open();
      const record = await inserted(store);
      const fence = await claimed(store, record.id, t.longTtl);
      await store.cancel(record.id);
      expect(await finishOne(store, { id: record.id, fence, status: "succeeded", resultJson: '{"ok": true }' })).toBe(true);
      const job = await mustGet(store, record.id);
      expect(job).toMatchObject({
        status: "succeeded",
        resultJson: '{"ok": true }',
        claimExpiresAt: 0,
        cancelRequested: false,
        fence,
        gen: 1,
      });
      expect(job.finishedAt).toBeTypeOf("number");
      expect(await store.renew([{ id: record.id, fence, ttlMs: t.longTtl }])).toEqual([{ ok: false }]);
      expect(await store.progress(record.id, fence, "1")).toBe(false);
    });

    for (const status of ["dead", "cancelled"] as const) {
      storeCase(`finish ${status}: terminal with the error, finishedAt set, the claim cleared`, async () => {
        const store = await open();
        const record = await inserted(store);
        const fence = await claimed(store, record.id, t.longTtl);
        expect(await finishOne(store, { id: record.id, fence, status, errorJson: '{"message":"boom"}' })).toBe(true);
        const job = await mustGet(store, record.id);
        expect(job).toMatchObject({ status, errorJson: '{"message":"boom"}', claimExpiresAt: 0, cancelRequested: false });
        expect(job.finishedAt).toBeTypeOf("number");
        expect(job.resultJson).toBeUndefined();
      });
    }

    storeCase("finish retrying: the next attempt's attempt, runAt and error, gen + 1, unpublished, claims 0, not finished", async () => {
      const store = await open();
      const record = await inserted(store);
      await store.markPublished([{ id: record.id, gen: 1 }]);
      const fence = await claimed(store, record.id, t.longTtl);
      const runAt = record.runAt + 60_000;
      const finish = { id: record.id, fence, status: "retrying", attempt: 2, runAt, errorJson: '{"message":"try again"}' } as const;
      expect(await finishOne(store, finish)).toBe(true);
      const job = await mustGet(store, record.id);
      expect(job).toMatchObject({
        status: "retrying",
        gen: 2,
        attempt: 2,
        runAt,
        errorJson: '{"message":"try again"}',
        published: false,
        claims: 0,
        claimExpiresAt: 0,
        cancelRequested: false,
      });
      expect(job.finishedAt).toBeUndefined();
      expect(await store.renew([{ id: record.id, fence, ttlMs: t.longTtl }])).toEqual([{ ok: false }]);
    });

    storeCase("finish waiting hands the job back unrun: claims - 1, the same gen, claimable again", async () => {
      const store = await open();
      const record = await inserted(store);
      await claimed(store, record.id, t.shortTtl, { worker: "cf-crashed" });
      const taken = await claimAfterExpiry(store, { id: record.id, gen: 1, ttlMs: t.longTtl, worker: "cf-leaving" }, t.wait);
      expect(taken).toMatchObject({ outcome: "claimed", fence: 2, claims: 2 });
      expect(await finishOne(store, { id: record.id, fence: 2, status: "waiting" })).toBe(true);
      const job = await mustGet(store, record.id);
      expect(job).toMatchObject({ status: "waiting", gen: 1, claims: 1, fence: 2, claimExpiresAt: 0, attempt: 1 });
      expect(job.finishedAt).toBeUndefined();
      const again = await claimOne(store, { id: record.id, gen: 1, ttlMs: t.longTtl, worker: "cf-next" });
      expect(again).toEqual({ outcome: "claimed", fence: 3, claims: 2, cancelRequested: false });
    });

    storeCase("a finish hands back a cancel request with the claim: the next claim does not hear it", async () => {
      const store = await open();
      const record = await inserted(store);
      const fence = await claimed(store, record.id, t.longTtl);
      expect(await store.cancel(record.id)).toEqual({ outcome: "cancel-requested" });
      expect(await finishOne(store, { id: record.id, fence, status: "waiting" })).toBe(true);
      expect((await mustGet(store, record.id)).cancelRequested).toBe(false);
      const again = await claimOne(store, { id: record.id, gen: 1, ttlMs: t.longTtl, worker: "cf-next" });
      expect(again).toMatchObject({ outcome: "claimed", cancelRequested: false });
    });

    storeCase("a second finish of one claim is refused and writes nothing", async () => {
      const store = await open();
      const record = await inserted(store);
      const fence = await claimed(store, record.id, t.longTtl);
      expect(await finishOne(store, { id: record.id, fence, status: "succeeded", resultJson: '"first"' })).toBe(true);
      const after = await mustGet(store, record.id);
      for (const status of ["succeeded", "retrying", "dead", "cancelled", "waiting"] as const) {
        expect(await finishOne(store, { id: record.id, fence, status, resultJson: '"second"', attempt: 2, runAt: 1 })).toBe(false);
      }
      expect(await mustGet(store, record.id)).toEqual(after);
    });

    storeCase("concurrent finishes of one claim: exactly one commits, and the record is what it wrote", async () => {
      const [s1, s2] = await openTwo();
      const variants = ["succeeded", "retrying", "dead", "cancelled", "waiting"] as const;
      for (let round = 0; round < 5; round++) {
        const record = await inserted(s1);
        const fence = await claimed(s1, record.id, t.longTtl);
        const results = await Promise.all(
          variants.map((status, i) =>
            finishOne(i % 2 === 0 ? s1 : s2, { id: record.id, fence, status, resultJson: `"${status}"`, attempt: 2, runAt: 1 }),
          ),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = variants[results.indexOf(true)];
        expect((await mustGet(s2, record.id)).status).toBe(winner);
      }
    });

    storeCase("batches of renew and finish answer in order, one outcome per request", async () => {
      const store = await open();
      const [a, b] = [await inserted(store), await inserted(store)];
      const fa = await claimed(store, a.id, t.longTtl);
      const fb = await claimed(store, b.id, t.longTtl);
      const renewed = await store.renew([
        { id: a.id, fence: fa + 1, ttlMs: t.longTtl },
        { id: b.id, fence: fb, ttlMs: t.longTtl },
        { id: a.id, fence: fa, ttlMs: t.longTtl },
      ]);
      expect(renewed).toEqual([{ ok: false }, { ok: true, cancelRequested: false }, { ok: true, cancelRequested: false }]);
      const finished = await store.finish([
        { id: a.id, fence: fa, status: "succeeded", resultJson: "1" },
        { id: a.id, fence: fa, status: "dead" },
        { id: b.id, fence: fb + 1, status: "dead" },
        { id: b.id, fence: fb, status: "dead" },
      ]);
      expect(finished).toEqual([true, false, false, true]);
      expect((await mustGet(store, a.id)).status).toBe("succeeded");
      expect((await mustGet(store, b.id)).status).toBe("dead");
    });
  });
}
