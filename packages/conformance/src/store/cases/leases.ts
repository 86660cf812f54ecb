/** Leases: one owner at a time (the sweeper, the pruner), renewable by it, free again once it runs out. */
import { waitFor } from "@jobs/core/testing";
import { expect } from "vitest";
import { storeGroup, uniqueName } from "../internal/fixture.js";
import type { StoreConformanceOptions } from "../options.js";

/** Leases: exclusive while held, renewable by the owner, takeable after expiry. */
export function storeLeases(options: StoreConformanceOptions): void {
  storeGroup(options, "store: leases", ({ t, storeCase, open, openTwo }) => {
    storeCase("a lease is exclusive while held and renewable by its owner; names are independent", async () => {
      const [s1, s2] = await openTwo();
      const name = uniqueName("lease");
      expect(await s1.lease(name, "owner-a", t.longTtl)).toBe(true);
      expect(await s2.lease(name, "owner-b", t.longTtl)).toBe(false);
      expect(await s1.lease(name, "owner-a", t.longTtl)).toBe(true);
      expect(await s2.lease(name, "owner-a", t.longTtl)).toBe(true);
      expect(await s2.lease(name, "owner-b", t.longTtl)).toBe(false);
      expect(await s2.lease(uniqueName("other"), "owner-b", t.longTtl)).toBe(true);
    });

    storeCase("concurrent takes of a free lease: exactly one owner gets it", async () => {
      const [s1, s2] = await openTwo();
      const name = uniqueName("race");
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? s1 : s2).lease(name, `owner-${i}`, t.longTtl)));
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    storeCase("a lease that ran out is taken by another owner, and its old owner is then refused", async () => {
      const store = await open();
      const name = uniqueName("expire");
      expect(await store.lease(name, "owner-a", t.shortTtl)).toBe(true);
      await waitFor(() => store.lease(name, "owner-b", t.longTtl), { timeout: t.wait, message: "the lease never ran out" });
      expect(await store.lease(name, "owner-a", t.longTtl)).toBe(false);
    });

    storeCase("a renewal extends the lease past its first ttl", async () => {
      const store = await open();
      const name = uniqueName("renew");
      const witness = uniqueName("witness");
      expect(await store.lease(name, "owner-a", t.shortTtl)).toBe(true);
      expect(await store.lease(name, "owner-a", t.longTtl)).toBe(true);
      // A witness lease taken after the renewal ran out: so did the first ttl.
      expect(await store.lease(witness, "owner-w", t.shortTtl)).toBe(true);
      await waitFor(() => store.lease(witness, "owner-x", t.longTtl), { timeout: t.wait, message: "the witness lease never ran out" });
      expect(await store.lease(name, "owner-b", t.longTtl)).toBe(false);
    });
  });
}
