/** Publishing: the published mark of the current gen, and the records the sweeper publishes. */
import type { JobStore } from "@jobs/core/adapter";
import { waitFor } from "@jobs/core/testing";
import { expect } from "vitest";
import { claimed, finishOne, inserted, mustGet, newRecord, storeClockPast, storeGroup } from "../internal/fixture.js";
import type { StoreConformanceOptions } from "../options.js";

/**
 * Marks every record `unpublished` returns published, so that what it returns next is this case's
 * own. Cases run one at a time, and every record belongs to a case that has ended.
 */
async function drainUnpublished(store: JobStore, timeout: number): Promise<void> {
  await waitFor(
    async () => {
      const batch = await store.unpublished(0, 500);
      if (batch.length === 0) return true;
      await store.markPublished(batch.map((job) => ({ id: job.id, gen: job.gen })));
      return false;
    },
    { timeout, interval: 1, message: "unpublished() never drained" },
  );
}

/** Publishing: markPublished of the current gen only; unpublished() returns what the sweeper must publish, oldest first. */
export function storePublishing(options: StoreConformanceOptions): void {
  storeGroup(options, "store: publishing", ({ t, storeCase, open }) => {
    storeCase("markPublished of the current gen sets published; of another gen or an unknown id it does nothing", async () => {
      const store = await open();
      const record = await inserted(store);
      await store.markPublished([
        { id: record.id, gen: 2 },
        { id: newRecord().id, gen: 1 },
      ]);
      expect((await mustGet(store, record.id)).published).toBe(false);
      await store.markPublished([{ id: record.id, gen: 1 }]);
      expect((await mustGet(store, record.id)).published).toBe(true);
    });

    storeCase("a retry's new gen starts unpublished; the old gen's mark is a no-op", async () => {
      const store = await open();
      const record = await inserted(store);
      await store.markPublished([{ id: record.id, gen: 1 }]);
      const fence = await claimed(store, record.id, t.longTtl);
      await finishOne(store, { id: record.id, fence, status: "retrying", attempt: 2, runAt: record.runAt });
      await store.markPublished([{ id: record.id, gen: 1 }]);
      expect(await mustGet(store, record.id)).toMatchObject({ gen: 2, published: false });
      await store.markPublished([{ id: record.id, gen: 2 }]);
      expect(await mustGet(store, record.id)).toMatchObject({ gen: 2, published: true });
    });

    storeCase(
      "unpublished() returns only unpublished waiting, scheduled and retrying records, oldest write first, at most limit",
      async () => {
        const store = await open();
        await drainUnpublished(store, t.wait);
        const retried = await inserted(store);
        const retriedFence = await claimed(store, retried.id, t.longTtl);
        const waiting = await inserted(store);
        const scheduled = await inserted(store, { status: "scheduled" });
        const active = await inserted(store);
        await claimed(store, active.id, t.longTtl);
        const cancelled = await inserted(store);
        await store.cancel(cancelled.id);
        const published = await inserted(store);
        await store.markPublished([{ id: published.id, gen: 1 }]);
        const blocked = await inserted(store);
        expect(await store.transition({ id: blocked.id, from: ["waiting"], to: "blocked" })).toBeDefined();
        // The retry is written after the other two, by the store's clock: it is the youngest.
        const latest = Math.max((await mustGet(store, waiting.id)).updatedAt, (await mustGet(store, scheduled.id)).updatedAt);
        await storeClockPast(store, latest, t.wait);
        await finishOne(store, { id: retried.id, fence: retriedFence, status: "retrying", attempt: 2, runAt: retried.runAt });

        const all = await store.unpublished(0, 1000);
        expect(new Set(all.map((j) => j.id))).toEqual(new Set([waiting.id, scheduled.id, retried.id]));
        expect(all.at(-1)?.id).toBe(retried.id);
        expect(all.find((j) => j.id === retried.id)).toMatchObject({ status: "retrying", gen: 2, published: false });
        for (let i = 1; i < all.length; i++) expect(all[i]!.updatedAt).toBeGreaterThanOrEqual(all[i - 1]!.updatedAt);
        expect(await store.unpublished(0, 2)).toEqual(all.slice(0, 2));
        expect(await store.unpublished(0, 1)).toEqual(all.slice(0, 1));
      },
    );

    storeCase("unpublished() leaves out records written more recently than olderThanMs, by the store's clock", async () => {
      const store = await open();
      await drainUnpublished(store, t.wait);
      const record = await inserted(store);
      expect(await store.unpublished(t.longTtl, 1000)).toEqual([]);
      const age = t.ms(200);
      const found = await waitFor(async () => (await store.unpublished(age, 1000)).find((j) => j.id === record.id), {
        timeout: t.wait,
        message: `record never showed as unpublished for ${age} ms`,
      });
      expect(found).toMatchObject({ id: record.id, status: "waiting", gen: 1, published: false });
      await store.markPublished([{ id: record.id, gen: 1 }]);
      expect(await store.unpublished(0, 1000)).toEqual([]);
    });
  });
}
