import { createMemoryStore, type MemoryStore } from "@jobs/memory";
import { beforeAll, describe, expect, it } from "vitest";
import { encodeEnvelope } from "../src/adapter/index.js";
import {
  BrokerClosedError,
  createAdmin,
  createClient,
  InvalidOptionsError,
  JobFailedError,
  JobNotFoundError,
  LeaseLostError,
  UnsupportedError,
  WaitTimeoutError,
} from "../src/index.js";
import { newRecord } from "../src/records.js";
import { waitFor, waitForEvent } from "../src/testing/index.js";
import { aborted, deliverAndDie, type Fixture, fixture, gate, noDelay, rejection } from "./support.js";

/**
 * The memory broker fuses with the memory store (the claim as a delivery is handed out, the finish
 * with the ack); a view of the store that shows only the contract's members makes it run unfused,
 * with core calling the store. Every case runs both ways.
 */
type Mode = "fused" | "unfused";

/** The store as a worker may see it: itself, or a view without its fusion (symbol-keyed) members. */
function seen(store: MemoryStore, mode: Mode): MemoryStore {
  if (mode === "fused") return store;
  return new Proxy(store, {
    get(target, key) {
      if (typeof key === "symbol") return undefined;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

let mode: Mode = "fused";

/** A fixture whose client and workers share a memory store. */
function withStore(label: string): Fixture & { store: MemoryStore; stored: ReturnType<typeof createClient> } {
  const f = fixture(label);
  const store = createMemoryStore();
  const stored = createClient({ broker: f.broker, store });
  const worker = f.worker;
  const view = seen(store, mode);
  return {
    ...f,
    store,
    stored,
    worker: (options = {}) => worker({ store: view, ...options }),
  };
}

describe.each(["fused", "unfused"] as const)("%s", (m) => {
  beforeAll(() => {
    mode = m;
  });
  it("makes no claim or finish call to the store when the broker is fused with it, else one each per job", async () => {
    const f = fixture("fusion-calls");
    const store = createMemoryStore();
    const calls = { claim: 0, finish: 0 };
    const view = seen(store, m);
    const counted = new Proxy(view, {
      get(target, key) {
        const value: unknown = Reflect.get(target, key, target);
        if (key !== "claim" && key !== "finish") return value;
        return (...args: unknown[]) => {
          calls[key]++;
          return (value as (...a: unknown[]) => unknown)(...args);
        };
      },
    });
    const job = f.job("counted");
    await f
      .worker({ store: counted })
      .handle(job, () => "ok")
      .start();
    const client = createClient({ broker: f.broker, store });
    expect(await (await client.enqueue(job, {})).result()).toBe("ok");
    expect(calls).toEqual(m === "fused" ? { claim: 0, finish: 0 } : { claim: 1, finish: 1 });
  });

  describe("job records: lookup and results", () => {
    it("keeps a record from enqueue to success, with the handler's result", async () => {
      const f = withStore("rec-ok");
      const job = f.job<{ n: number }>("double");
      const { id } = await f.stored.enqueue(job, { n: 21 }, { tags: ["batch-7"], metadata: { tenant: "t1" } });
      const waiting = await f.stored.getJob(id);
      expect(waiting).toMatchObject({
        id,
        status: "waiting",
        attempt: 1,
        payload: { n: 21 },
        tags: ["batch-7"],
        metadata: { tenant: "t1" },
        gen: 1,
      });
      await f
        .worker()
        .handle(job, (p) => ({ doubled: p.n * 2 }))
        .start();
      const handle = await f.stored.enqueue(job, { n: 5 });
      expect(await handle.result()).toEqual({ doubled: 10 });
      expect(await f.stored.result(id)).toEqual({ doubled: 42 });
      const done = await f.stored.getJob(id);
      expect(done).toMatchObject({ status: "succeeded", result: { doubled: 42 }, fence: 1, claims: 1 });
      expect(done?.finishedAt).toBeGreaterThanOrEqual(done?.startedAt ?? Number.POSITIVE_INFINITY);
      expect(done?.resultBytes).toBe(JSON.stringify({ doubled: 42 }).length);
    });

    it("gives null for an unknown id, and not-found when cancelling it", async () => {
      const f = withStore("rec-unknown");
      expect(await f.stored.getJob("no-such-job")).toBeNull();
      expect(await f.stored.cancel("no-such-job")).toEqual({ outcome: "not-found" });
    });

    it("rejects result() of an id with no record at once, with JobNotFoundError naming the id", async () => {
      const f = withStore("rec-result-unknown");
      // A wait of an hour: the test times out unless the rejection comes at once.
      const error = await rejection(f.stored.result("no-such-job", { timeout: "1h" }));
      expect(error).toBeInstanceOf(JobNotFoundError);
      expect(error).toMatchObject({ code: "job-not-found", id: "no-such-job" });
      expect((error as Error).message).toContain("no-such-job");
      expect(await rejection(f.stored.result(""))).toBeInstanceOf(InvalidOptionsError);
    });

    it.each(["notifying", "polled"] as const)(
      "close() ends pending result() waits at once with BrokerClosedError, and refuses later calls (%s store)",
      async (how) => {
        const f = withStore(`rec-close-${how}`);
        // A view of the store that cannot notify: result() polls it.
        const store =
          how === "notifying"
            ? f.store
            : new Proxy(f.store, {
                get(target, key) {
                  if (key === "capabilities") return { ...target.capabilities, notify: false };
                  const value: unknown = Reflect.get(target, key, target);
                  return typeof value === "function" ? value.bind(target) : value;
                },
              });
        const client = createClient({ broker: f.broker, store });
        const job = f.job("never-runs");
        const handle = await client.enqueue(job, {});
        // Nothing runs the job and the wait is an hour long: only close() can end it.
        const pending = rejection(handle.result({ timeout: "1h" }));
        await client.close();
        expect(await pending).toBeInstanceOf(BrokerClosedError);
        expect(await rejection(client.result(handle.id))).toBeInstanceOf(BrokerClosedError);
        expect(await rejection(client.enqueue(job, {}))).toBeInstanceOf(BrokerClosedError);
        expect(await rejection(client.getJob(handle.id))).toBeInstanceOf(BrokerClosedError);
        await client.close();
        // The store stays open: another client still reads the record.
        expect(await f.stored.getJob(handle.id)).toMatchObject({ status: "waiting" });
      },
    );

    it("records each retry and ends dead with the last error; result() rejects with JobFailedError", async () => {
      const f = withStore("rec-dead");
      const job = f.job("fails", { maxAttempts: 2, backoff: noDelay });
      const statuses: string[] = [];
      const worker = f.worker().handle(job, async (_p, ctx) => {
        statuses.push((await f.stored.getJob(ctx.job.id))?.status ?? "none");
        throw new Error(`boom ${ctx.job.attempt}`);
      });
      await worker.start();
      const handle = await f.stored.enqueue(job, {});
      const error = await rejection(handle.result());
      expect(error).toBeInstanceOf(JobFailedError);
      expect((error as JobFailedError).status).toBe("dead");
      expect((error as JobFailedError).error?.message).toBe("boom 2");
      expect(statuses).toEqual(["active", "active"]);
      expect(await f.stored.getJob(handle.id)).toMatchObject({
        status: "dead",
        attempt: 2,
        gen: 2,
        error: { message: "boom 2", attempt: 2 },
      });
    });

    it("result() gives up after its timeout with WaitTimeoutError, and the job goes on", async () => {
      const f = withStore("rec-timeout");
      const job = f.job("slow");
      const release = gate();
      await f
        .worker()
        .handle(job, () => release.promise.then(() => "late"))
        .start();
      const handle = await f.stored.enqueue(job, {});
      expect(await rejection(handle.result({ timeout: 50 }))).toBeInstanceOf(WaitTimeoutError);
      release.open();
      expect(await handle.result()).toBe("late");
    });

    it("keeps the last progress value", async () => {
      const f = withStore("rec-progress");
      const job = f.job("steps");
      const release = gate();
      await f
        .worker()
        .handle(job, async (_p, ctx) => {
          await ctx.progress({ done: 1, of: 3 });
          await ctx.progress({ done: 2, of: 3 });
          await release.promise;
        })
        .start();
      const { id } = await f.stored.enqueue(job, {});
      await waitFor(async () => (await f.stored.getJob(id))?.progress !== undefined && (await f.stored.getJob(id))?.progress);
      expect((await f.stored.getJob(id))?.progress).toEqual({ done: 2, of: 3 });
      release.open();
      await f.stored.result(id);
    });

    it("fails a job for good when its result is over maxResultBytes, with a message naming the option", async () => {
      const f = withStore("rec-big");
      const job = f.job("big", { maxAttempts: 5 });
      await f
        .worker({ maxResultBytes: 100 })
        .handle(job, () => "x".repeat(200))
        .start();
      const handle = await f.stored.enqueue(job, {});
      const error = (await rejection(handle.result())) as JobFailedError;
      expect(error.status).toBe("dead");
      expect(error.error?.message).toMatch(/over the worker's maxResultBytes \(100\)/);
      expect((await f.stored.getJob(handle.id))?.attempt).toBe(1);
    });

    it("lists records oldest first, by tag and status, a page at a time", async () => {
      const f = withStore("rec-list");
      const job = f.job("listed");
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) ids.push((await f.stored.enqueue(job, { i }, { tags: i % 2 === 0 ? ["even"] : [] })).id);
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await f.stored.listJobs({ queue: f.queue, limit: 3, ...(cursor === undefined ? {} : { cursor }) });
        expect(page.jobs.length).toBeLessThanOrEqual(3);
        seen.push(...page.jobs.map((j) => j.id));
        cursor = page.cursor;
      } while (cursor !== undefined);
      expect(seen).toEqual(ids);
      const even = await f.stored.listJobs({ tag: "even" });
      expect(even.jobs.map((j) => j.id)).toEqual([ids[0], ids[2], ids[4], ids[6]]);
      expect((await f.stored.listJobs({ queue: f.queue, status: "succeeded" })).jobs).toEqual([]);
      expect(await rejection(f.stored.listJobs({ limit: 0 }))).toBeInstanceOf(InvalidOptionsError);
      expect(await rejection(f.stored.listJobs({ status: "done" as never }))).toBeInstanceOf(InvalidOptionsError);
    });
  });

  describe("job records: ids and generations", () => {
    it("dedupes a caller id through the record: the second enqueue is a duplicate and the job runs once", async () => {
      const f = withStore("rec-dedupe");
      const job = f.job("once");
      let runs = 0;
      await f
        .worker()
        .handle(job, () => {
          runs++;
        })
        .start();
      const first = await f.stored.enqueue(job, {}, { id: "order-42" });
      const second = await f.stored.enqueue(job, {}, { id: "order-42" });
      expect([first.duplicate, second.duplicate]).toEqual([false, true]);
      await f.stored.result("order-42");
      await f.broker.drain();
      expect(runs).toBe(1);
    });

    it("acks a message of a finished job without running it again", async () => {
      const f = withStore("rec-stale");
      const job = f.job("stale");
      let runs = 0;
      const worker = f.worker().handle(job, () => {
        runs++;
      });
      await worker.start();
      const handle = await f.stored.enqueue(job, { a: 1 });
      await handle.result();
      // The same message once more, as a broker that redelivers or a producer that re-sends would hand it out.
      const record = await f.store.get(handle.id);
      const body = encodeEnvelope({
        v: 1,
        id: handle.id,
        name: job.name,
        queue: f.queue,
        payload: { a: 1 },
        attempt: 1,
        maxAttempts: 3,
        priority: "normal",
        enqueuedAt: record?.enqueuedAt ?? 0,
        runAt: 0,
        timeout: 60_000,
        gen: 1,
      });
      await f.broker.publish(f.queue, [{ id: handle.id, body, priority: 2, delayMs: 0, dedupe: false }]);
      await f.broker.drain();
      expect(runs).toBe(1);
      expect((await f.stored.getJob(handle.id))?.status).toBe("succeeded");
    });

    it("gives a message enqueued without a store a record at claim", async () => {
      const f = withStore("rec-unflagged");
      const job = f.job("plain");
      await f
        .worker()
        .handle(job, () => "ok")
        .start();
      const { id } = await f.client.enqueue(job, { plain: true });
      // No record until a worker claims it: result() of an id without one rejects, so wait for the record first.
      await waitFor(async () => (await f.stored.getJob(id))?.status === "succeeded");
      expect(await f.stored.result(id)).toBe("ok");
      expect(await f.stored.getJob(id)).toMatchObject({ status: "succeeded", payload: { plain: true }, gen: 1 });
    });

    it("publishes a record whose producer died between record and publish (the sweeper)", async () => {
      const f = withStore("rec-sweep");
      const job = f.job("swept");
      const now = Date.now();
      const meta = {
        v: 1,
        id: crypto.randomUUID(),
        name: job.name,
        queue: f.queue,
        attempt: 1,
        maxAttempts: 3,
        priority: "normal",
        enqueuedAt: now,
        runAt: now,
        timeout: 60_000,
        gen: 1,
      } as const;
      await f.store.insert([newRecord({ meta, payloadJson: '{"swept":true}' }, [], now)]);
      const seen: unknown[] = [];
      await f
        .worker({ sweepAfter: "200ms" })
        .handle(job, (p) => {
          seen.push(p);
          return "found";
        })
        .start();
      expect(await f.stored.result(meta.id)).toBe("found");
      expect(seen).toEqual([{ swept: true }]);
      expect((await f.store.get(meta.id))?.published).toBe(true);
    });

    it("voids the record of a job the broker definitely rejected, so it never runs", async () => {
      const f = withStore("rec-void");
      const job = f.job("voided");
      await f.broker.close();
      const error = await rejection(f.stored.enqueue(job, {}, { id: "voided-1" }));
      expect(error.message).toMatch(/closed/);
      expect((await f.stored.getJob("voided-1"))?.status).toBe("discarded");
    });

    it("requeues a dead job through the admin: the record goes back to waiting with a new generation, and it runs", async () => {
      const f = withStore("rec-requeue");
      const job = f.job("flaky", { maxAttempts: 1 });
      let fail = true;
      await f
        .worker()
        .handle(job, () => {
          if (fail) throw new Error("first time");
          return "second time";
        })
        .start();
      const handle = await f.stored.enqueue(job, {});
      expect(await rejection(handle.result())).toBeInstanceOf(JobFailedError);
      await waitFor(async () => (await f.broker.counts(f.queue)).dead === 1);
      fail = false;
      const admin = createAdmin({ broker: f.broker, store: f.store });
      expect(await admin.requeueDeadLetters(f.queue)).toBe(1);
      expect(await handle.result()).toBe("second time");
      expect(await f.stored.getJob(handle.id)).toMatchObject({ status: "succeeded", attempt: 1, gen: 2 });
    });
  });

  describe("job records: shutdown", () => {
    it("hands back the record of a delivery that arrives after close() began (a close during start)", async () => {
      const f = withStore("late-delivery");
      const job = f.job("late");
      const handle = await f.stored.enqueue(job, {});
      const ran: string[] = [];
      // A lease of an hour: a claim left behind would keep the job from the next worker for that long.
      const first = f.worker({ lease: "1h" }).handle(job, () => {
        ran.push("first");
      });
      // The memory broker hands the job out as the consumer registers, before start() resolves:
      // close() is then already under way, and the fused delivery arrives claimed.
      const started = first.start();
      await first.close();
      await started;
      expect(ran).toEqual([]);
      expect(await f.stored.getJob(handle.id)).toMatchObject({ status: "waiting" });
      await f
        .worker({ lease: "1h" })
        .handle(job, () => {
          ran.push("second");
          return "ran";
        })
        .start();
      expect(await handle.result({ timeout: "1h" })).toBe("ran");
      expect(ran).toEqual(["second"]);
    });
  });

  describe("job records: dead letters at receipt", () => {
    it("records a job nobody handles as dead (unknown-job), so the admin's requeue runs it once a handler exists", async () => {
      const f = withStore("rec-unknown-job");
      const known = f.job("known");
      const stranger = f.job("stranger");
      const first = f.worker().handle(known, () => {});
      await first.start();
      const dead = waitForEvent(first, "job.dead-lettered", () => true);
      const handle = await f.stored.enqueue(stranger, {});
      expect((await dead).reason).toBe("unknown-job");
      const record = await f.stored.getJob(handle.id);
      expect(record).toMatchObject({ status: "dead", attempt: 1, fence: 1 });
      expect(record?.error?.code).toBe("unknown-job");
      await first.close();
      await f
        .worker()
        .handle(stranger, () => "handled now")
        .start();
      const admin = createAdmin({ broker: f.broker, store: f.store });
      expect(await admin.requeueDeadLetters(f.queue)).toBe(1);
      expect(await handle.result()).toBe("handled now");
      expect(await f.stored.getJob(handle.id)).toMatchObject({ status: "succeeded", attempt: 1, gen: 2 });
    });

    it("records a job dead-lettered at receipt for a crash loop as dead, so the admin's requeue runs it", async () => {
      const f = withStore("rec-crash-loop");
      const job = f.job("crashy");
      const handle = await f.stored.enqueue(job, {});
      // Two consumers died holding it: its next delivery is its third, over maxDeliveries 2.
      for (let i = 0; i < 2; i++) await deliverAndDie(f.broker, f.queue);
      let runs = 0;
      const worker = f.worker({ maxDeliveries: 2 }).handle(job, () => {
        runs++;
        return "ran";
      });
      const dead = waitForEvent(worker, "job.dead-lettered", () => true);
      await worker.start();
      expect((await dead).reason).toBe("crash-loop");
      expect(runs).toBe(0);
      expect(await f.stored.getJob(handle.id)).toMatchObject({ status: "dead", fence: 1 });
      const admin = createAdmin({ broker: f.broker, store: f.store });
      expect(await admin.requeueDeadLetters(f.queue)).toBe(1);
      expect(await handle.result()).toBe("ran");
      expect(runs).toBe(1);
    });

    it("acks unrun, without a dead letter, a message of a job nobody handles whose record is already finished", async () => {
      const f = withStore("rec-unknown-stale");
      const known = f.job("known");
      const stranger = f.job("stranger");
      const { id } = await f.stored.enqueue(stranger, {});
      expect(await f.stored.cancel(id)).toEqual({ outcome: "cancelled" });
      const worker = f.worker().handle(known, () => {});
      const events: string[] = [];
      worker.on("job.dead-lettered", () => events.push("dead-lettered"));
      await worker.start();
      await waitFor(async () => {
        const counts = await f.broker.counts(f.queue);
        return counts.waiting + counts.active === 0;
      });
      expect(await f.broker.counts(f.queue)).toMatchObject({ dead: 0 });
      expect(events).toEqual([]);
      expect(await f.stored.getJob(id)).toMatchObject({ status: "cancelled", fence: 0 });
    });
  });

  describe("job records: cancel", () => {
    it("cancels a waiting job, which never starts", async () => {
      const f = withStore("cancel-wait");
      const job = f.job("never");
      const { id } = await f.stored.enqueue(job, {}, { delay: "200ms" });
      expect(await f.stored.cancel(id)).toEqual({ outcome: "cancelled" });
      let runs = 0;
      await f
        .worker()
        .handle(job, () => {
          runs++;
        })
        .start();
      const error = (await rejection(f.stored.result(id))) as JobFailedError;
      expect(error.status).toBe("cancelled");
      await f.broker.drain({ delayedWithin: 1_000 });
      expect(runs).toBe(0);
      expect(await f.stored.cancel(id)).toEqual({ outcome: "finished", status: "cancelled" });
    });

    it("aborts a running job's signal at its next heartbeat; it ends cancelled", async () => {
      const f = withStore("cancel-run");
      const job = f.job("long", { maxAttempts: 3 });
      const started = gate();
      const worker = f.worker({ lease: "300ms" }).handle(job, async (_p, ctx) => {
        started.open();
        await aborted(ctx.signal);
        throw ctx.signal.reason;
      });
      await worker.start();
      const cancelled = waitForEvent(worker, "job.cancelled");
      const { id } = await f.stored.enqueue(job, {});
      await started.promise;
      expect(await f.stored.cancel(id)).toEqual({ outcome: "cancel-requested" });
      expect((await cancelled).job.id).toBe(id);
      const record = await f.stored.getJob(id);
      expect(record).toMatchObject({ status: "cancelled", attempt: 1, error: { code: "job-cancelled" } });
    });

    it("ends succeeded when the handler returns before hearing the cancel", async () => {
      const f = withStore("cancel-late");
      const job = f.job("quick");
      const release = gate();
      const started = gate();
      await f
        .worker({ lease: "60s" })
        .handle(job, async () => {
          started.open();
          await release.promise;
          return "done anyway";
        })
        .start();
      const { id } = await f.stored.enqueue(job, {});
      await started.promise;
      expect(await f.stored.cancel(id)).toEqual({ outcome: "cancel-requested" });
      release.open();
      expect(await f.stored.result(id)).toBe("done anyway");
    });
  });

  describe("job records: without a store, and bad options", () => {
    it("names the fix when a store-only feature is used without a store", async () => {
      const f = fixture("no-store");
      const job = f.job("plain");
      for (const call of [f.client.getJob("x"), f.client.listJobs(), f.client.cancel("x"), f.client.result("x")]) {
        const error = await rejection(call);
        expect(error).toBeInstanceOf(UnsupportedError);
        expect(error.message).toMatch(/needs a job store: pass `store`/);
      }
      expect(await rejection(f.client.enqueue(job, {}, { tags: ["a"] }))).toBeInstanceOf(UnsupportedError);
      const handle = await f.client.enqueue(job, {});
      expect(await rejection(handle.result())).toBeInstanceOf(UnsupportedError);
      let progress: unknown;
      await f
        .worker()
        .handle(job, async (_p, ctx) => {
          progress = await ctx.progress(1).catch((e: unknown) => e);
        })
        .start();
      await f.broker.drain();
      expect(progress).toBeInstanceOf(UnsupportedError);
    });

    it("refuses the memory store beside another broker, and a store that is not one", () => {
      const f = fixture("pairing");
      const other = Object.create(f.broker, { name: { value: "redis" } });
      expect(() => createClient({ broker: other, store: createMemoryStore() })).toThrow(/pairs with the memory broker/);
      expect(() => createClient({ broker: f.broker, store: {} as never })).toThrow(InvalidOptionsError);
    });

    it("checks tags", async () => {
      const f = withStore("tags");
      const job = f.job("tagged");
      expect(await rejection(f.stored.enqueue(job, {}, { tags: "a" as never }))).toBeInstanceOf(InvalidOptionsError);
      expect(await rejection(f.stored.enqueue(job, {}, { tags: [""] }))).toBeInstanceOf(InvalidOptionsError);
      expect(await rejection(f.stored.enqueue(job, {}, { tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }))).toBeInstanceOf(
        InvalidOptionsError,
      );
    });

    it("refuses progress once this worker lost the job", async () => {
      const f = withStore("progress-lost");
      const job = f.job("lost");
      let late: unknown;
      const done = gate();
      await f
        .worker()
        .handle(job, (_p, ctx) => {
          setImmediate(() => {
            void ctx
              .progress(1)
              .catch((e: unknown) => e)
              .then((e) => {
                late = e;
                done.open();
              });
          });
        })
        .start();
      await f.stored.enqueue(job, {});
      await done.promise;
      expect(late).toBeInstanceOf(LeaseLostError);
    });
  });

  describe("job records: retention", () => {
    it("keeps the newest `count` finished records per job, and a definition's own rule wins over the worker's", async () => {
      const f = withStore("retain");
      const pruned = f.job("pruned");
      const kept = f.job("kept", { retain: { succeeded: "forever" } });
      await f
        .worker({ retain: { succeeded: { count: 2 } }, pruneEvery: "100ms" })
        .handle(pruned, () => "p")
        .handle(kept, () => "k")
        .start();
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const a = await f.stored.enqueue(pruned, { i });
        await a.result();
        ids.push(a.id);
        await (await f.stored.enqueue(kept, { i })).result();
      }
      const left = await waitFor(async () => {
        const page = await f.stored.listJobs({ name: pruned.name, status: "succeeded" });
        return page.jobs.length === 2 ? page.jobs : undefined;
      });
      expect(left.map((j) => j.id)).toEqual(ids.slice(3));
      expect(await f.stored.getJob(ids[0] as string)).toBeNull();
      expect((await f.stored.listJobs({ name: kept.name })).jobs).toHaveLength(5);
    });

    it("prunes every job name, when workers of one store handle different jobs (a lease per name)", async () => {
      const f = withStore("retain-split");
      const first = f.job("first");
      const second = f.job("second");
      // Two workers, each the only one to handle its job: with one lease for the whole store, only
      // the holder's names were pruned.
      await f
        .worker({ retain: { succeeded: { count: 1 } }, pruneEvery: "100ms" })
        .handle(first, () => 1)
        .start();
      await f
        .worker({ retain: { succeeded: { count: 1 } }, pruneEvery: "100ms" })
        .handle(second, () => 2)
        .start();
      for (let i = 0; i < 3; i++) {
        await (await f.stored.enqueue(first, { i })).result();
        await (await f.stored.enqueue(second, { i })).result();
      }
      for (const job of [first, second]) {
        await waitFor(async () => (await f.stored.listJobs({ name: job.name, status: "succeeded" })).jobs.length === 1, {
          message: `${job.name}: records not pruned to 1`,
        });
      }
    });

    it("checks retain options", () => {
      const f = fixture("retain-bad");
      expect(() => f.job("x", { retain: { done: { age: "1h" } } as never })).toThrow(InvalidOptionsError);
      expect(() => f.job("x", { retain: { succeeded: {} } })).toThrow(/give age, count or both/);
      expect(() => f.job("x", { retain: { dead: { count: -1 } } })).toThrow(InvalidOptionsError);
      expect(() => f.worker({ retain: { succeeded: { age: "soon" as never } } })).toThrow(InvalidOptionsError);
    });
  });

  describe("job records: the local deadline", () => {
    it("aborts a running job whose claim no renewal confirmed within its lease (an event-loop stall)", async () => {
      const f = withStore("deadline");
      const waits = f.job("waits", { maxAttempts: 2, backoff: noDelay });
      const stalls = f.job("stalls");
      const started = gate();
      let executions = 0;
      const worker = f.worker({ lease: "300ms", concurrency: 2 });
      worker
        .handle(waits, async (_p, ctx) => {
          if (executions++ > 0) return "after the stall";
          started.open();
          await aborted(ctx.signal);
          throw ctx.signal.reason;
        })
        .handle(stalls, () => {
          const end = Date.now() + 600;
          while (Date.now() < end) {
            // a synchronous stall longer than the lease: no heartbeat runs meanwhile
          }
        });
      await worker.start();
      const handle = await f.stored.enqueue(waits, {});
      // The stalling job may lose its own broker lease too: wait for the waiting job's event.
      const lost = waitForEvent(worker, "job.lease-lost", (e) => e.job?.id === handle.id && /no renewal/.test(e.error.message));
      await started.promise;
      await f.stored.enqueue(stalls, {});
      expect((await lost).error.message).toMatch(/no renewal of the job's claim was confirmed within its lease/);
      // Whether the broker's redelivery took the job over before the abort, or the aborted attempt
      // was retried, the job runs again once and succeeds.
      expect(await handle.result()).toBe("after the stall");
      expect(executions).toBe(2);
    });
  });

  describe("job records: the handler's context", () => {
    it("lets a handler destructure progress from its context", async () => {
      const f = withStore("ctx-destructure");
      const job = f.job("destructured");
      await f
        .worker()
        .handle(job, async (_p, { progress }) => {
          await progress({ half: true });
          return "done";
        })
        .start();
      const handle = await f.stored.enqueue(job, {});
      expect(await handle.result()).toBe("done");
      expect((await f.stored.getJob(handle.id))?.progress).toEqual({ half: true });
    });
  });
});
