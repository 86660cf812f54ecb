/** Transitions: conditional status changes outside a claim (discard a voided enqueue, requeue a dead job). */
import { expect } from "vitest";
import { claimed, claimOne, finishOne, inserted, mustGet, newRecord, storeGroup } from "../internal/fixture.js";
import type { StoreConformanceOptions } from "../options.js";

/** Transitions: from/gen conditions, bumpGen, finishedAt on a terminal status, the record after or undefined. */
export function storeTransitions(options: StoreConformanceOptions): void {
  storeGroup(options, "store: transitions", ({ t, storeCase, open, openTwo }) => {
    storeCase("a transition whose from or gen does not match, or of an unknown id, resolves to undefined and writes nothing", async () => {
      const store = await open();
      const record = await inserted(store);
      const before = await mustGet(store, record.id);
      expect(await store.transition({ id: record.id, from: ["dead", "scheduled"], to: "discarded" })).toBeUndefined();
      expect(await store.transition({ id: record.id, from: ["waiting"], gen: 2, to: "discarded" })).toBeUndefined();
      expect(await store.transition({ id: record.id, from: [], to: "discarded" })).toBeUndefined();
      expect(await store.transition({ id: newRecord().id, from: ["waiting"], to: "discarded" })).toBeUndefined();
      expect(await mustGet(store, record.id)).toEqual(before);
    });

    storeCase("a transition to a terminal status sets finishedAt and returns the record after it", async () => {
      const store = await open();
      const record = await inserted(store);
      const after = await store.transition({ id: record.id, from: ["waiting", "scheduled"], gen: 1, to: "discarded" });
      expect(after).toMatchObject({ id: record.id, status: "discarded", gen: 1, payloadJson: record.payloadJson });
      expect(after?.finishedAt).toBeTypeOf("number");
      expect(await mustGet(store, record.id)).toEqual(after);
      const claim = await claimOne(store, { id: record.id, gen: 1, ttlMs: t.longTtl, worker: "cf-late" });
      expect(claim).toEqual({ outcome: "stale", status: "discarded" });
    });

    storeCase("a requeue with bumpGen: gen + 1, unpublished, the given attempt and runAt; claimable with the new gen", async () => {
      const store = await open();
      const record = await inserted(store, { attempt: 3, maxAttempts: 3 });
      await store.markPublished([{ id: record.id, gen: 1 }]);
      const fence = await claimed(store, record.id, t.longTtl);
      expect(await finishOne(store, { id: record.id, fence, status: "dead", errorJson: '"no"' })).toBe(true);
      const runAt = record.runAt + 5_000;
      const after = await store.transition({ id: record.id, from: ["dead"], to: "waiting", bumpGen: true, attempt: 1, runAt });
      expect(after).toMatchObject({ status: "waiting", gen: 2, attempt: 1, runAt, published: false, claims: 0 });
      expect(await mustGet(store, record.id)).toEqual(after);
      expect((await claimOne(store, { id: record.id, gen: 1, ttlMs: t.longTtl, worker: "cf-old" })).outcome).toBe("stale");
      const claim = await claimOne(store, { id: record.id, gen: 2, ttlMs: t.longTtl, worker: "cf-new" });
      expect(claim).toMatchObject({ outcome: "claimed", fence: fence + 1, claims: 1 });
    });

    storeCase("a transition without bumpGen keeps gen, attempt and the published mark; runAt when given", async () => {
      const store = await open();
      const record = await inserted(store, { status: "scheduled" });
      await store.markPublished([{ id: record.id, gen: 1 }]);
      const runAt = record.runAt + 1_000;
      const after = await store.transition({ id: record.id, from: ["scheduled"], gen: 1, to: "waiting", runAt });
      expect(after).toMatchObject({ status: "waiting", gen: 1, attempt: 1, runAt, published: true });
      expect(after?.finishedAt).toBeUndefined();
      const kept = await store.transition({ id: record.id, from: ["waiting"], to: "scheduled" });
      expect(kept).toMatchObject({ status: "scheduled", runAt, gen: 1 });
    });

    storeCase("concurrent transitions with one condition: exactly one applies", async () => {
      const [s1, s2] = await openTwo();
      const record = await inserted(s1);
      const bumped = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          (i % 2 === 0 ? s1 : s2).transition({ id: record.id, from: ["waiting"], gen: 1, to: "scheduled", bumpGen: true }),
        ),
      );
      expect(bumped.filter((r) => r !== undefined)).toHaveLength(1);
      expect(await mustGet(s2, record.id)).toMatchObject({ status: "scheduled", gen: 2 });
    });
  });
}
