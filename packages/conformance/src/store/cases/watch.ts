/** Watch: a store with `notify` tells listeners of every job that reaches a terminal status. */
import type { JobStatus, JobStore } from "@jobs/core/adapter";
import { waitFor } from "@jobs/core/testing";
import { describe, expect } from "vitest";
import { claimed, finishOne, inserted, storeGroup } from "../internal/fixture.js";
import type { StoreConformanceOptions } from "../options.js";

/** What a listener heard, in order. */
class Heard {
  readonly events: { readonly id: string; readonly status: JobStatus }[] = [];
  readonly listener = (id: string, status: JobStatus): void => {
    this.events.push({ id, status });
  };
  of(id: string): JobStatus[] {
    return this.events.filter((e) => e.id === id).map((e) => e.status);
  }
  async waitFor(id: string, timeout: number): Promise<JobStatus[]> {
    await waitFor(() => this.of(id).length > 0, { timeout, message: `no notification for ${id}` });
    return this.of(id);
  }
}

/** Subscribes `heard` on `store`; returns the unsubscribe function. */
async function watchInto(store: JobStore, heard: Heard): Promise<() => void> {
  expect(store.watch, "a store with notify implements watch").toBeTypeOf("function");
  return store.watch!(heard.listener);
}

/** Watch (capability notify): terminal finishes, transitions and cancels notify, across instances; unsubscribe stops it. */
export function storeWatch(options: StoreConformanceOptions): void {
  storeGroup(options, "store: watch", ({ caps, t, storeCase, open }) => {
    describe.skipIf(!caps.notify)("watch [needs capability: notify]", () => {
      storeCase("a terminal finish, transition or cancel notifies with the id and status; other writes do not", async () => {
        const store = await open();
        const heard = new Heard();
        await watchInto(store, heard);
        const retried = await inserted(store);
        const fence = await claimed(store, retried.id, t.longTtl);
        await finishOne(store, { id: retried.id, fence: fence, status: "retrying", attempt: 2, runAt: retried.runAt });
        const succeeded = await inserted(store);
        await finishOne(store, {
          id: succeeded.id,
          fence: await claimed(store, succeeded.id, t.longTtl),
          status: "succeeded",
          resultJson: "1",
        });
        const dead = await inserted(store);
        await finishOne(store, { id: dead.id, fence: await claimed(store, dead.id, t.longTtl), status: "dead" });
        const discarded = await inserted(store);
        await store.transition({ id: discarded.id, from: ["waiting"], to: "discarded" });
        const cancelled = await inserted(store);
        await store.cancel(cancelled.id);
        expect(await heard.waitFor(cancelled.id, t.wait)).toEqual(["cancelled"]);
        expect(await heard.waitFor(succeeded.id, t.wait)).toEqual(["succeeded"]);
        expect(await heard.waitFor(dead.id, t.wait)).toEqual(["dead"]);
        expect(await heard.waitFor(discarded.id, t.wait)).toEqual(["discarded"]);
        expect(heard.of(retried.id)).toEqual([]);
      });

      describe.skipIf(caps.inProcess)("across instances [needs: a store that is not inProcess]", () => {
        storeCase("a listener on one instance hears what another instance finished", async () => {
          const [watcher, writer] = [await open(), await open()];
          const heard = new Heard();
          await watchInto(watcher, heard);
          const record = await inserted(writer);
          await finishOne(writer, { id: record.id, fence: await claimed(writer, record.id, t.longTtl), status: "succeeded" });
          const cancelled = await inserted(writer);
          await writer.cancel(cancelled.id);
          expect(await heard.waitFor(record.id, t.wait)).toEqual(["succeeded"]);
          expect(await heard.waitFor(cancelled.id, t.wait)).toEqual(["cancelled"]);
        });
      });

      storeCase("after unsubscribe a listener hears nothing more, while another still does", async () => {
        const store = await open();
        const [stopped, kept] = [new Heard(), new Heard()];
        const unsubscribe = await watchInto(store, stopped);
        await watchInto(store, kept);
        const before = await inserted(store);
        await store.cancel(before.id);
        await stopped.waitFor(before.id, t.wait);
        unsubscribe();
        const after = await inserted(store);
        await store.cancel(after.id);
        await kept.waitFor(after.id, t.wait);
        expect(stopped.of(after.id)).toEqual([]);
        expect(() => unsubscribe()).not.toThrow();
      });
    });
  });
}
