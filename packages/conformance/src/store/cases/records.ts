/** Records: insert-if-absent, get, and the fields a store keeps exactly as core wrote them. */
import { expect } from "vitest";
import { inserted, mustGet, newRecord, storeGroup } from "../internal/fixture.js";
import type { StoreConformanceOptions } from "../options.js";

/** Records: ids are deduped by insert-if-absent (also concurrently); fields round-trip; JSON texts stay untouched. */
export function storeRecords(options: StoreConformanceOptions): void {
  storeGroup(options, "store: records", ({ storeCase, open, openTwo }) => {
    storeCase("insert of an id that exists is refused, whatever its status; the first record stays", async () => {
      const store = await open();
      const first = newRecord({ payloadJson: '"first"' });
      expect(await store.insert([first])).toEqual(["inserted"]);
      expect(await store.insert([{ ...first, payloadJson: '"second"' }])).toEqual(["exists"]);
      await store.cancel(first.id);
      expect(await store.insert([{ ...first, payloadJson: '"third"' }])).toEqual(["exists"]);
      const job = await mustGet(store, first.id);
      expect(job.payloadJson).toBe('"first"');
      expect(job.status).toBe("cancelled");
    });

    storeCase("a batch answers in order, one outcome per record, an id repeated inside it included", async () => {
      const store = await open();
      const old = await inserted(store);
      const a = newRecord();
      const b = newRecord();
      expect(await store.insert([a, old, b, { ...a, payloadJson: '"again"' }])).toEqual(["inserted", "exists", "inserted", "exists"]);
      expect((await mustGet(store, a.id)).payloadJson).toBe(a.payloadJson);
      expect((await mustGet(store, b.id)).id).toBe(b.id);
    });

    storeCase("concurrent inserts of one id: exactly one is inserted", async () => {
      const [s1, s2] = await openTwo();
      const record = newRecord();
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? s1 : s2).insert([{ ...record, payloadJson: String(i) }])),
      );
      const flat = outcomes.flat();
      expect(flat.filter((o) => o === "inserted")).toHaveLength(1);
      expect(flat.filter((o) => o === "exists")).toHaveLength(7);
      const winner = flat.indexOf("inserted");
      expect((await mustGet(s1, record.id)).payloadJson).toBe(String(winner));
    });

    storeCase("get of an unknown id resolves to undefined", async () => {
      const store = await open();
      expect(await store.get(newRecord().id)).toBeUndefined();
    });

    storeCase("every field round-trips, JSON texts byte for byte; the bookkeeping starts unclaimed and unpublished", async () => {
      const store = await open();
      const record = newRecord({
        name: "cf-round-trip",
        queue: "cf-round-trip-queue",
        status: "scheduled",
        attempt: 2,
        maxAttempts: 7,
        priority: "critical",
        tags: ["a", "b c", "ü"],
        metadataJson: '{ "z": 1,  "a": [1.50, 2e3] }',
        traceJson: '{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}',
        payloadJson: ' {"b":"é\\u00e9\\n","a":null, "n": 10.0} ',
        enqueuedAt: 1_700_000_000_123,
        runAt: 1_700_000_060_456,
        timeout: 12_345,
        gen: 1,
      });
      expect(await store.insert([record])).toEqual(["inserted"]);
      const job = await mustGet(store, record.id);
      expect(job).toMatchObject({
        ...record,
        tags: [...record.tags],
        fence: 0,
        claims: 0,
        claimExpiresAt: 0,
        published: false,
        cancelRequested: false,
      });
      expect(typeof job.updatedAt).toBe("number");
      expect(job.startedAt).toBeUndefined();
      expect(job.finishedAt).toBeUndefined();
      expect(job.resultJson).toBeUndefined();
      expect(job.progressJson).toBeUndefined();
      expect(job.errorJson).toBeUndefined();
      expect(job.worker).toBeUndefined();
    });

    storeCase("optional fields left out stay absent", async () => {
      const store = await open();
      const record = newRecord();
      await store.insert([record]);
      const job = await mustGet(store, record.id);
      expect(job.metadataJson).toBeUndefined();
      expect(job.traceJson).toBeUndefined();
      expect(job.tags).toEqual([]);
    });
  });
}
