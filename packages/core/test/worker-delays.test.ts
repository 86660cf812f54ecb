import { describe, expect, it } from "vitest";
import { encodeEnvelope } from "../src/adapter/index.js";
import { waitFor, waitForEvent } from "../src/testing/index.js";
import { fixture, publishRaw, rawEnvelope } from "./support.js";

describe("worker: messages due later", () => {
  it("puts back a delivery that arrives before its runAt without counting an attempt", async () => {
    const f = fixture("early");
    const job = f.job<null>("raw");
    const starts: { at: number; attempt: number }[] = [];
    const worker = f.worker().handle(job, (_p, ctx) => {
      starts.push({ at: Date.now(), attempt: ctx.job.attempt });
    });
    const deferred = waitForEvent(worker, "job.deferred");
    await worker.start();
    const runAt = Date.now() + 150;
    // Published with no broker delay, as a broker whose native delay ran short would deliver it.
    await publishRaw(f.broker, f.queue, encodeEnvelope(rawEnvelope(f.queue, { runAt, payload: null })));
    const event = await deferred;
    expect(event.delayMs).toBeGreaterThan(100);
    expect(event.delayMs).toBeLessThanOrEqual(150);
    await waitFor(() => starts.length === 1);
    expect(starts[0]?.at).toBeGreaterThanOrEqual(runAt);
    expect(starts[0]?.attempt).toBe(1);
  });

  it("re-delays a job due beyond the broker's native delay until its runAt", async () => {
    const f = fixture("redelay", { maxDelay: 40 });
    const job = f.job<null>("far");
    const deferrals: number[] = [];
    const starts: number[] = [];
    const worker = f.worker().handle(job, (_p, ctx) => {
      starts.push(ctx.job.attempt);
    });
    worker.on("job.deferred", (e) => deferrals.push(e.delayMs));
    await worker.start();
    const { runAt } = await f.client.enqueue(job, null, { delay: 150 });
    await waitFor(() => starts.length === 1);
    expect(Date.now()).toBeGreaterThanOrEqual(runAt);
    expect(starts).toEqual([1]);
    // Re-delayed on receipt, each hold within the native limit (how many hops depends on how late
    // each delivery came: a stalled event loop makes fewer, never longer, ones).
    expect(deferrals.length).toBeGreaterThanOrEqual(1);
    for (const ms of deferrals) expect(ms).toBeLessThanOrEqual(40);
  });
});
