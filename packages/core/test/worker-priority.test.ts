import { describe, expect, it } from "vitest";
import { waitFor } from "../src/testing/index.js";
import { fixture } from "./support.js";

describe("worker: priority", () => {
  it.each([["native" as const], ["none" as const]])("starts the highest priority first from a backlog (priority %s)", async (priority) => {
    const f = fixture(`prio-${priority}`, { priority, paused: true });
    const job = f.job<string>("p");
    const order: string[] = [];
    const worker = f.worker({ concurrency: 1 }).handle(job, (p) => {
      order.push(p);
    });
    await worker.start();
    await f.client.enqueue(job, "low", { priority: "low" });
    await f.client.enqueue(job, "normal-1");
    await f.client.enqueue(job, "critical", { priority: "critical" });
    await f.client.enqueue(job, "trivial", { priority: "trivial" });
    await f.client.enqueue(job, "high", { priority: "high" });
    await f.client.enqueue(job, "normal-2");
    f.broker.resume();
    await waitFor(() => order.length === 6);
    expect(order).toEqual(["critical", "high", "normal-1", "normal-2", "low", "trivial"]);
  });

  it.each([
    { aging: undefined, lowAt: 40 },
    { aging: 100, lowAt: "early" as const },
  ])("a low job behind a stream of critical ones starts after $lowAt with priorityAging $aging", async ({ aging, lowAt }) => {
    const f = fixture("aging", { paused: true });
    const job = f.job<string>("a");
    const order: string[] = [];
    let next = 5;
    const base = { concurrency: 1, prefetch: 100 };
    // A stream: each critical job holds the only slot for 10 ms and enqueues the next critical job,
    // so critical work keeps arriving (40 in all) after the low job was buffered.
    const worker = f.worker(aging === undefined ? base : { ...base, priorityAging: aging }).handle(job, async (p) => {
      order.push(p);
      if (p === "low") return;
      if (next < 40) await f.client.enqueue(job, `critical-${next++}`, { priority: "critical" });
      await new Promise((resolve) => setTimeout(resolve, 10));
    });
    await worker.start();
    await f.client.enqueue(job, "low", { priority: "low" });
    await f.client.enqueueMany(
      Array.from({ length: 5 }, (_, i) => ({ job, payload: `critical-${i}`, options: { priority: "critical" as const } })),
    );
    f.broker.resume();
    await waitFor(() => order.length === 41, { timeout: 5_000 });
    if (lowAt === "early") {
      // Aged after 100 ms, so it starts while critical jobs keep coming.
      expect(order.indexOf("low")).toBeGreaterThan(0);
      expect(order.indexOf("low")).toBeLessThan(40);
    } else {
      expect(order.indexOf("low")).toBe(lowAt);
    }
  });
});
