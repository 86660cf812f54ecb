/** List: records matching every given filter, oldest enqueue first, in pages that visit each record once. */
import type { JobStore, ListQuery, StoredJob } from "@jobs/core/adapter";
import { expect } from "vitest";
import { claimed, insertAll, newRecord, storeGroup, uniqueName } from "../internal/fixture.js";
import type { StoreConformanceOptions } from "../options.js";

/** Every page of `query` (at most `maxPages`), checking each respects the limit; `between` runs after every page that has a cursor. */
async function allPages(
  store: JobStore,
  query: Omit<ListQuery, "cursor">,
  between: () => Promise<void> = async () => {},
  maxPages = 1000,
): Promise<StoredJob[]> {
  const jobs: StoredJob[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < maxPages; page++) {
    const result = await store.list(cursor === undefined ? query : { ...query, cursor });
    expect(result.jobs.length).toBeLessThanOrEqual(query.limit);
    jobs.push(...result.jobs);
    if (result.cursor === undefined) return jobs;
    cursor = result.cursor;
    await between();
  }
  throw new Error(`list did not end within ${maxPages} pages`);
}

const ids = (jobs: readonly StoredJob[]): string[] => jobs.map((j) => j.id);

/** List: oldest first; each filter alone and combined; paging visits every match once, new records after; limit respected. */
export function storeList(options: StoreConformanceOptions): void {
  storeGroup(options, "store: list", ({ t, storeCase, open }) => {
    storeCase("list returns a queue's records oldest enqueue first, at most limit", async () => {
      const store = await open();
      const queue = uniqueName("list");
      const base = Date.now();
      const records = await insertAll(store, ...Array.from({ length: 5 }, (_, i) => newRecord({ queue, enqueuedAt: base + i })));
      const page = await store.list({ queue, limit: 100 });
      expect(ids(page.jobs)).toEqual(ids(records as StoredJob[]));
      expect(page.cursor).toBeUndefined();
      const limited = await store.list({ queue, limit: 3 });
      expect(ids(limited.jobs)).toEqual(ids(records.slice(0, 3) as StoredJob[]));
      expect(limited.cursor).toBeTypeOf("string");
      expect(page.jobs[0]).toMatchObject({ ...records[0], tags: [...records[0]!.tags], fence: 0, published: false });
    });

    storeCase("each filter alone and combined: queue, name, status, tag", async () => {
      const store = await open();
      const [queue, other, nameA, nameB, tag1, tag2] = ["q", "q2", "a", "b", "t1", "t2"].map(uniqueName) as [
        string,
        string,
        string,
        string,
        string,
        string,
      ];
      const base = Date.now();
      const [r1, r2, r3, r4, r5, r6] = await insertAll(
        store,
        newRecord({ queue, name: nameA, tags: [tag1], enqueuedAt: base }),
        newRecord({ queue, name: nameB, tags: [tag1, tag2], enqueuedAt: base + 1 }),
        newRecord({ queue, name: nameA, tags: [tag2], enqueuedAt: base + 2 }),
        newRecord({ queue, name: nameB, tags: [], enqueuedAt: base + 3 }),
        newRecord({ queue, name: nameA, tags: [tag1], enqueuedAt: base + 4 }),
        newRecord({ queue: other, name: nameA, tags: [tag1, tag2], enqueuedAt: base + 5 }),
      );
      await claimed(store, r3!.id, t.longTtl);
      await store.cancel(r4!.id);
      await store.cancel(r5!.id);
      const list = async (query: Omit<ListQuery, "cursor" | "limit">): Promise<string[]> =>
        ids(await allPages(store, { ...query, limit: 1000 }));
      const idsOf = (...rs: (typeof r1)[]): string[] => rs.map((r) => r!.id);

      expect(await list({ queue })).toEqual(idsOf(r1, r2, r3, r4, r5));
      expect(await list({ name: nameA })).toEqual(idsOf(r1, r3, r5, r6));
      expect(await list({ tag: tag2 })).toEqual(idsOf(r2, r3, r6));
      const cancelled = await allPages(store, { status: "cancelled", limit: 1000 });
      expect(cancelled.every((j) => j.status === "cancelled")).toBe(true);
      expect(ids(cancelled).filter((id) => idsOf(r1, r2, r3, r4, r5, r6).includes(id))).toEqual(idsOf(r4, r5));
      expect(await list({ queue, name: nameB })).toEqual(idsOf(r2, r4));
      expect(await list({ queue, status: "waiting" })).toEqual(idsOf(r1, r2));
      expect(await list({ queue, status: "active" })).toEqual(idsOf(r3));
      expect(await list({ name: nameA, tag: tag1 })).toEqual(idsOf(r1, r5, r6));
      expect(await list({ queue, name: nameA, status: "cancelled", tag: tag1 })).toEqual(idsOf(r5));
      expect(await list({ queue: other, status: "cancelled" })).toEqual([]);
      expect(await list({ queue: uniqueName("empty") })).toEqual([]);
    });

    storeCase("paging with small limits visits every matching record exactly once, in order", async () => {
      const store = await open();
      const queue = uniqueName("pages");
      const tag = uniqueName("tag");
      const base = Date.now();
      const records = await insertAll(
        store,
        ...Array.from({ length: 9 }, (_, i) => newRecord({ queue, tags: i % 3 === 0 ? [] : [tag], enqueuedAt: base + i })),
      );
      for (const limit of [1, 2, 4, 9, 10]) {
        expect(ids(await allPages(store, { queue, limit }))).toEqual(records.map((r) => r.id));
      }
      const tagged = records.filter((r) => r.tags.includes(tag)).map((r) => r.id);
      for (const limit of [1, 2, 3]) expect(ids(await allPages(store, { queue, tag, limit }))).toEqual(tagged);
    });

    storeCase("records inserted between pages come after the ones listed, and every one is visited once", async () => {
      const store = await open();
      const queue = uniqueName("growing");
      const records = await insertAll(store, ...Array.from({ length: 7 }, () => newRecord({ queue })));
      const added: string[] = [];
      const visited = await allPages(store, { queue, limit: 2 }, async () => {
        const [record] = await insertAll(store, newRecord({ queue }));
        added.push(record!.id);
      });
      expect(added.length).toBeGreaterThan(0);
      expect(ids(visited)).toEqual([...records.map((r) => r.id), ...added]);
    });
  });
}
