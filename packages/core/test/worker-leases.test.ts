import { describe, expect, it } from "vitest";
import { waitFor, waitForEvent } from "../src/testing/index.js";
import { fixture, gate } from "./support.js";

describe("worker: leases", () => {
  it("keeps the lease of a job running longer than the lease by heartbeats", async () => {
    const f = fixture("heartbeat");
    const job = f.job<null>("long");
    let starts = 0;
    const lost: unknown[] = [];
    const worker = f.worker({ lease: 150 }).handle(job, async () => {
      starts++;
      await new Promise((resolve) => setTimeout(resolve, 600));
    });
    worker.on("job.lease-lost", (e) => lost.push(e));
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded", () => true, { timeout: 3_000 });
    await f.client.enqueue(job, null);
    await succeeded;
    expect(starts).toBe(1);
    expect(lost).toEqual([]);
  });

  it("does not start a buffered job whose lease ran out while it waited: lease-lost, and it runs once, from its redelivery", async () => {
    const f = fixture("buffered-lease");
    const lease = 100;
    const blocker = f.job<null>("blocker");
    const victim = f.job<null>("victim");
    const open = gate();
    let blocked = false;
    let victimStarts = 0;
    const worker = f
      .worker({ lease, concurrency: 1, prefetch: 2 })
      .handle(blocker, async () => {
        if (blocked) return;
        blocked = true;
        await open.promise;
        // The event loop stalls past the lease: no heartbeat reaches the broker meanwhile, so the
        // victim, buffered behind this job, loses its lease (the broker redelivers it).
        const until = Date.now() + 3 * lease;
        while (Date.now() < until) {}
      })
      .handle(victim, () => {
        victimStarts++;
      });
    const lost: string[] = [];
    worker.on("job.lease-lost", (e) => lost.push(e.job?.name ?? "?"));
    await f.client.enqueue(blocker, null);
    await f.client.enqueue(victim, null);
    await worker.start();
    await waitFor(() => blocked && f.broker.server.queues.get(f.queue)?.active.size === 2, { message: "victim not buffered" });
    const victimDone = waitForEvent(worker, "job.succeeded", (e) => e.job.name === "victim");
    open.open();
    await victimDone;
    expect(victimStarts).toBe(1);
    expect(lost).toContain("victim");
  });
});
