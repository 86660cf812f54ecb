/**
 * Restart: a store on a private server the suite kills and starts again. Operations during the
 * outage reject with a retryable error and work again after it, through the same instance; a
 * durable store keeps every record it acknowledged.
 */
import { JobsError } from "@jobs/core";
import type { JobStore } from "@jobs/core/adapter";
import { waitFor } from "@jobs/core/testing";
import { describe, expect } from "vitest";
import { rejectionOf } from "../../internal/harness.js";
import { claimed, finishOne, inserted, newRecord, storeCapabilitiesOf, storeGroup } from "../internal/fixture.js";
import type { StoreConformanceOptions, StoreRestart } from "../options.js";

/** Resolves with `call()`'s value once the store answers again; only retryable `JobsError`s are tolerated meanwhile. */
async function eventually<T>(call: () => Promise<T>, timeout: number): Promise<T> {
  let last: unknown;
  const result = await waitFor(
    async () => {
      try {
        return { value: await call() };
      } catch (error) {
        last = error;
        if (!(JobsError.isInstance(error) && error.retryable)) return { error };
        return undefined;
      }
    },
    { timeout, interval: 50, message: "the store did not answer again after the restart" },
  ).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}: last error ${String(last)}`, { cause: last });
  });
  if ("error" in result) throw new Error(`a call failed with a non-retryable error: ${String(result.error)}`, { cause: result.error });
  return result.value;
}

/** Expects `promise` to reject with a retryable `JobsError`. */
async function expectRetryable(name: string, promise: Promise<unknown>): Promise<void> {
  const error = await rejectionOf(promise);
  expect(JobsError.isInstance(error), `${name} during the outage: expected a JobsError, got ${String(error)}`).toBe(true);
  expect((error as JobsError).retryable, `${name} during the outage: expected a retryable error, got ${String(error)}`).toBe(true);
}

/** Restart (option restart): records survive a restart of a durable store's server; operations fail retryably during the outage. */
export function storeRestart(options: StoreConformanceOptions): void {
  storeGroup(options, "store: restart", ({ t, storeCase, open }) => {
    describe.skipIf(options.restart === undefined)("restart [needs option: restart]", async () => {
      const restart = options.restart as StoreRestart;
      const caps = restart === undefined ? undefined : await storeCapabilitiesOf(restart.createStore);
      const recovery = t.ms(30_000);

      /** Kills the server, runs `during`, and starts the server again whatever happened. */
      const outage = async (during: () => Promise<void>): Promise<void> => {
        await restart.kill();
        try {
          await during();
        } finally {
          await restart.start();
        }
      };

      storeCase("operations during the outage reject with a retryable error, and work again after, on the same instance", async () => {
        const store: JobStore = await open(restart.createStore);
        const record = await inserted(store);
        await outage(async () => {
          await expectRetryable("get", store.get(record.id));
          await expectRetryable("insert", store.insert([newRecord()]));
          await expectRetryable("claim", store.claim([{ id: record.id, gen: 1, ttlMs: t.longTtl, worker: "cf-w" }]));
        });
        const after = newRecord();
        expect(await eventually(() => store.insert([after]), recovery)).toEqual(["inserted"]);
        expect(await eventually(() => store.get(after.id), recovery)).toMatchObject({ id: after.id, status: "waiting" });
      });

      describe.skipIf(caps?.durable !== true)("durability [needs capability: durable]", () => {
        storeCase("records and their statuses survive a restart of the server", async () => {
          const store = await open(restart.createStore);
          const waiting = await inserted(store, { payloadJson: '{"kept": [1, 2]}', tags: ["restart"] });
          const active = await inserted(store);
          const fence = await claimed(store, active.id, t.longTtl);
          await store.progress(active.id, fence, '"half"');
          const succeeded = await inserted(store);
          await finishOne(store, {
            id: succeeded.id,
            fence: await claimed(store, succeeded.id, t.longTtl),
            status: "succeeded",
            resultJson: '"done"',
          });
          const cancelled = await inserted(store);
          await store.cancel(cancelled.id);
          const before = await Promise.all([waiting, active, succeeded, cancelled].map((r) => store.get(r.id)));
          await outage(async () => {});
          const fresh = await open(restart.createStore);
          const after = await eventually(() => Promise.all([waiting, active, succeeded, cancelled].map((r) => fresh.get(r.id))), recovery);
          expect(after).toEqual(before);
          expect(after.map((j) => j?.status)).toEqual(["waiting", "active", "succeeded", "cancelled"]);
          const claim = await fresh.claim([{ id: waiting.id, gen: 1, ttlMs: t.longTtl, worker: "cf-after" }]);
          expect(claim).toMatchObject([{ outcome: "claimed", fence: 1 }]);
        });
      });
    });
  });
}
