/** Cancel: a job not yet running never starts; a running one hears it at its next renewal. */
import type { ClaimOutcome } from "@jobs/core/adapter";
import { expect } from "vitest";
import { claimAfterExpiry, claimed, claimOne, finishOne, inserted, mustGet, newRecord, storeGroup } from "../internal/fixture.js";
import type { StoreConformanceOptions } from "../options.js";

/** Cancel: each outcome, the holder hearing a cancel request, and cancel racing claim. */
export function storeCancel(options: StoreConformanceOptions): void {
  storeGroup(options, "store: cancel", ({ t, storeCase, open, openTwo }) => {
    storeCase("cancel of a waiting, scheduled, retrying or blocked record: cancelled, finishedAt set, never claimed", async () => {
      const store = await open();
      const waiting = await inserted(store);
      const scheduled = await inserted(store, { status: "scheduled" });
      const retrying = await inserted(store);
      const fence = await claimed(store, retrying.id, t.longTtl);
      await finishOne(store, { id: retrying.id, fence, status: "retrying", attempt: 2, runAt: retrying.runAt });
      const blocked = await inserted(store);
      await store.transition({ id: blocked.id, from: ["waiting"], to: "blocked" });
      for (const [record, gen] of [
        [waiting, 1],
        [scheduled, 1],
        [retrying, 2],
        [blocked, 1],
      ] as const) {
        expect(await store.cancel(record.id)).toEqual({ outcome: "cancelled" });
        const job = await mustGet(store, record.id);
        expect(job.status).toBe("cancelled");
        expect(job.finishedAt).toBeTypeOf("number");
        expect(await claimOne(store, { id: record.id, gen, ttlMs: t.longTtl, worker: "cf-late" })).toEqual({
          outcome: "stale",
          status: "cancelled",
        });
      }
    });

    storeCase("cancel of an active record requests it: the holder's next renew and a takeover's claim hear it", async () => {
      const store = await open();
      const record = await inserted(store);
      const fence = await claimed(store, record.id, t.shortTtl, { worker: "cf-holder" });
      expect(await store.cancel(record.id)).toEqual({ outcome: "cancel-requested" });
      expect(await mustGet(store, record.id)).toMatchObject({ status: "active", cancelRequested: true, fence });
      expect(await store.renew([{ id: record.id, fence, ttlMs: t.shortTtl }])).toEqual([{ ok: true, cancelRequested: true }]);
      expect(await store.cancel(record.id)).toEqual({ outcome: "cancel-requested" });
      const taken = await claimAfterExpiry(store, { id: record.id, gen: 1, ttlMs: t.longTtl, worker: "cf-taker" }, t.wait);
      expect(taken).toEqual({ outcome: "claimed", fence: fence + 1, claims: 2, cancelRequested: true });
      expect(await finishOne(store, { id: record.id, fence: fence + 1, status: "cancelled" })).toBe(true);
    });

    storeCase("cancel of a terminal record is finished with its status and changes nothing; of an unknown id, not-found", async () => {
      const store = await open();
      const record = await inserted(store);
      const fence = await claimed(store, record.id, t.longTtl);
      await finishOne(store, { id: record.id, fence, status: "succeeded", resultJson: "42" });
      const before = await mustGet(store, record.id);
      expect(await store.cancel(record.id)).toEqual({ outcome: "finished", status: "succeeded" });
      expect(await mustGet(store, record.id)).toEqual(before);
      const cancelled = await inserted(store);
      await store.cancel(cancelled.id);
      expect(await store.cancel(cancelled.id)).toEqual({ outcome: "finished", status: "cancelled" });
      expect(await store.cancel(newRecord().id)).toEqual({ outcome: "not-found" });
    });

    storeCase("cancel racing claim: either cancelled and the claim stale, or claimed and the cancel requested", async () => {
      const [s1, s2] = await openTwo();
      for (let round = 0; round < 30; round++) {
        const record = await inserted(s1);
        const claim = (): Promise<ClaimOutcome> => claimOne(s2, { id: record.id, gen: 1, ttlMs: t.longTtl, worker: "cf-racer" });
        // Alternate which call leaves first, so both orders are tried.
        const [cancel, outcome] =
          round % 2 === 0
            ? await Promise.all([s1.cancel(record.id), claim()])
            : await Promise.all([claim(), s1.cancel(record.id)]).then(([c, x]) => [x, c] as const);
        const job = await mustGet(s1, record.id);
        if (cancel.outcome === "cancelled") {
          expect(outcome).toEqual({ outcome: "stale", status: "cancelled" });
          expect(job.status).toBe("cancelled");
        } else {
          expect(cancel).toEqual({ outcome: "cancel-requested" });
          expect(outcome).toMatchObject({ outcome: "claimed", fence: 1 });
          expect(job).toMatchObject({ status: "active", cancelRequested: true });
        }
      }
    });
  });
}
