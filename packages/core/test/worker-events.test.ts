import { describe, expect, it } from "vitest";
import { waitFor, waitForEvent } from "../src/testing/index.js";
import { eventLog, fixture, noDelay } from "./support.js";

describe("worker: events", () => {
  it("emits the events of each attempt in order", async () => {
    const f = fixture("events");
    const flaky = f.job<null>("flaky", { maxAttempts: 3, backoff: noDelay });
    const doomed = f.job<null>("doomed", { maxAttempts: 2, backoff: noDelay });
    const fine = f.job<null>("fine");
    const worker = f
      .worker()
      .handle(flaky, (_p, ctx) => {
        if (ctx.job.attempt < 3) throw new Error("not yet");
      })
      .handle(doomed, () => {
        throw new Error("never");
      })
      .handle(fine, () => {});
    const log = eventLog(worker);
    await worker.start();
    const a = await f.client.enqueue(flaky, null);
    const b = await f.client.enqueue(doomed, null);
    const c = await f.client.enqueue(fine, null);
    await waitFor(() => log.get(a.id)?.length === 8 && log.get(b.id)?.length === 6 && log.get(c.id)?.length === 2);
    const ofAttempt = (id: string, attempt: number) => log.get(id)?.filter((line) => line.endsWith(`:${attempt}`));
    expect(ofAttempt(a.id, 1)).toEqual(["job.started:1", "job.failed:1", "job.retrying:1"]);
    expect(ofAttempt(a.id, 2)).toEqual(["job.started:2", "job.failed:2", "job.retrying:2"]);
    expect(ofAttempt(a.id, 3)).toEqual(["job.started:3", "job.succeeded:3"]);
    expect(ofAttempt(b.id, 1)).toEqual(["job.started:1", "job.failed:1", "job.retrying:1"]);
    expect(ofAttempt(b.id, 2)).toEqual(["job.started:2", "job.failed:2", "job.dead-lettered:2"]);
    expect(log.get(c.id)).toEqual(["job.started:1", "job.succeeded:1"]);
  });

  it("emits job.retrying of an attempt before job.started of the next one", async () => {
    const f = fixture("events-across");
    const flaky = f.job<null>("flaky", { maxAttempts: 3, backoff: noDelay });
    const worker = f.worker().handle(flaky, (_p, ctx) => {
      if (ctx.job.attempt < 3) throw new Error("not yet");
    });
    const log = eventLog(worker);
    await worker.start();
    const { id } = await f.client.enqueue(flaky, null);
    await waitFor(() => log.get(id)?.length === 8);
    expect(log.get(id)).toEqual([
      "job.started:1",
      "job.failed:1",
      "job.retrying:1",
      "job.started:2",
      "job.failed:2",
      "job.retrying:2",
      "job.started:3",
      "job.succeeded:3",
    ]);
  });

  it("keeps running when an event listener throws", async () => {
    const f = fixture("listener");
    const job = f.job<null>("l");
    const worker = f.worker().handle(job, () => {});
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    try {
      worker.on("job.started", () => {
        throw new Error("listener bug");
      });
      await worker.start();
      const succeeded = waitForEvent(worker, "job.succeeded");
      await f.client.enqueue(job, null);
      await succeeded;
      await waitFor(() => warnings.some((w) => w.includes("listener bug")));
    } finally {
      process.off("warning", onWarning);
    }
  });
});
