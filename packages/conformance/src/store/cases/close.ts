/** Close: idempotent; a closed instance rejects every operation with StoreClosedError. */
import { describe, expect } from "vitest";
import { expectJobsError, rejectionOf } from "../../internal/harness.js";
import { inserted, mustGet, newRecord, storeGroup } from "../internal/fixture.js";
import type { StoreConformanceOptions } from "../options.js";

/** Close: idempotent, sequentially and concurrently; every operation after close rejects with code "store-closed". */
export function storeClose(options: StoreConformanceOptions): void {
  storeGroup(options, "store: close", ({ caps, t, storeCase, open }) => {
    storeCase("close resolves and is idempotent, sequentially and concurrently", async () => {
      const store = await open();
      await inserted(store);
      await expect(Promise.all([store.close(), store.close()])).resolves.toBeDefined();
      await expect(store.close()).resolves.toBeUndefined();
    });

    storeCase("every operation after close rejects with StoreClosedError", async () => {
      const store = await open();
      const record = await inserted(store);
      await store.close();
      const id = record.id;
      const calls: [string, () => Promise<unknown>][] = [
        ["insert", () => store.insert([newRecord()])],
        ["markPublished", () => store.markPublished([{ id, gen: 1 }])],
        ["claim", () => store.claim([{ id, gen: 1, ttlMs: t.longTtl, worker: "cf-w" }])],
        ["renew", () => store.renew([{ id, fence: 1, ttlMs: t.longTtl }])],
        ["finish", () => store.finish([{ id, fence: 1, status: "succeeded" }])],
        ["progress", () => store.progress(id, 1, "1")],
        ["transition", () => store.transition({ id, from: ["waiting"], to: "discarded" })],
        ["cancel", () => store.cancel(id)],
        ["get", () => store.get(id)],
        ["list", () => store.list({ limit: 10 })],
        ["unpublished", () => store.unpublished(0, 10)],
        ["lease", () => store.lease("cf-closed", "owner", t.longTtl)],
      ];
      if (caps.notify && store.watch !== undefined) calls.push(["watch", () => store.watch!(() => {})]);
      for (const [name, call] of calls) {
        const error = expectJobsError(await rejectionOf(call()), ["store-closed"]);
        expect(error.retryable, `${name} after close is not retryable`).toBe(false);
      }
    });

    describe.skipIf(caps.inProcess)("other instances [needs: a store that is not inProcess]", () => {
      storeCase("closing one instance leaves its records to the other instances, which keep working", async () => {
        const [first, second] = [await open(), await open()];
        const record = await inserted(first);
        await first.close();
        expect((await mustGet(second, record.id)).status).toBe("waiting");
        expect(await second.claim([{ id: record.id, gen: 1, ttlMs: t.longTtl, worker: "cf-w" }])).toMatchObject([{ outcome: "claimed" }]);
      });
    });
  });
}
