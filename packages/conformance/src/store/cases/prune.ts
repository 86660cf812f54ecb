/** Retention: `prune` removes what one rule selects (by age, beyond a count), oldest finish first, and nothing else. */
import type { JobStore } from "@jobs/core/adapter";
import { waitFor } from "@jobs/core/testing";
import { expect } from "vitest";
import { claimed, finishOne, inserted, mustGet, storeGroup, uniqueName } from "../internal/fixture.js";
import type { StoreConformanceOptions } from "../options.js";

/** Inserts, claims and finishes `count` jobs of `name` with `status`, one after another; returns their ids in finish order. */
async function finished(store: JobStore, name: string, count: number, status: "succeeded" | "dead", ttl: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const r = await inserted(store, { name });
    const fence = await claimed(store, r.id, ttl);
    expect(await finishOne(store, { id: r.id, fence, status })).toBe(true);
    ids.push(r.id);
  }
  return ids;
}

/** Prune: by count, by age, per name and status, bounded by limit; removed ids are free again. */
export function storePrune(options: StoreConformanceOptions): void {
  storeGroup(options, "store: prune", ({ t, storeCase, open }) => {
    storeCase("keep: removes all but the most recently finished, oldest first, within limit", async () => {
      const store = await open();
      const name = uniqueName("prune-keep");
      const ids = await finished(store, name, 5, "succeeded", t.longTtl);
      expect(await store.prune({ name, status: "succeeded", keep: 2, limit: 2 })).toBe(2);
      expect(await store.get(ids[0] as string)).toBeUndefined();
      expect(await store.get(ids[1] as string)).toBeUndefined();
      expect(await store.prune({ name, status: "succeeded", keep: 2, limit: 100 })).toBe(1);
      expect(await store.get(ids[2] as string)).toBeUndefined();
      for (const id of ids.slice(3)) expect((await mustGet(store, id)).status).toBe("succeeded");
      expect(await store.prune({ name, status: "succeeded", keep: 2, limit: 100 })).toBe(0);
    });

    storeCase("only the given name and status, and never a record that is not finished", async () => {
      const store = await open();
      const name = uniqueName("prune-scope");
      const other = uniqueName("prune-other");
      const dead = await finished(store, name, 2, "dead", t.longTtl);
      const otherName = await finished(store, other, 2, "succeeded", t.longTtl);
      const waiting = await inserted(store, { name });
      const active = await inserted(store, { name });
      await claimed(store, active.id, t.longTtl);
      expect(await store.prune({ name, status: "succeeded", keep: 0, limit: 100 })).toBe(0);
      expect(await store.prune({ name, status: "dead", keep: 0, limit: 100 })).toBe(2);
      for (const id of dead) expect(await store.get(id)).toBeUndefined();
      for (const id of [...otherName, waiting.id, active.id]) expect(await store.get(id)).toBeDefined();
    });

    storeCase("olderThanMs: removes what finished longer ago by the store's clock, keeps what finished since", async () => {
      const store = await open();
      const name = uniqueName("prune-age");
      const [old] = await finished(store, name, 1, "succeeded", t.longTtl);
      const oldFinish = (await mustGet(store, old as string)).finishedAt as number;
      // Finish more until one finished a second after the first by the store's clock (stamps it sets, no sleeps).
      const fresh = await waitFor(
        async () => {
          const [id] = await finished(store, name, 1, "succeeded", t.longTtl);
          return ((await mustGet(store, id as string)).finishedAt as number) > oldFinish + 1_000 ? (id as string) : undefined;
        },
        { interval: 100, timeout: t.wait, message: "the store's clock never moved a second on" },
      );
      const gap = ((await mustGet(store, fresh)).finishedAt as number) - oldFinish;
      // Half the gap: the first finish is older than that, the last one (finished just now) is not.
      expect(await store.prune({ name, status: "succeeded", olderThanMs: Math.floor(gap / 2), limit: 100 })).toBeGreaterThanOrEqual(1);
      expect(await store.get(old as string)).toBeUndefined();
      expect(await store.get(fresh)).toBeDefined();
    });

    storeCase("a pruned id is free again: inserting it is new", async () => {
      const store = await open();
      const name = uniqueName("prune-reuse");
      const [id] = await finished(store, name, 1, "succeeded", t.longTtl);
      expect(await store.prune({ name, status: "succeeded", keep: 0, limit: 10 })).toBe(1);
      const again = await inserted(store, { id: id as string, name });
      expect((await mustGet(store, again.id)).status).toBe("waiting");
    });
  });
}
