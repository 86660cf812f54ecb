import { describe, expect, it } from "vitest";
import { createAdmin } from "../src/index.js";
import { waitForEvent } from "../src/testing/index.js";
import { deadLetters, fixture, noDelay, publishRaw } from "./support.js";

describe("admin over a worker's dead letters", () => {
  it("bounds each excerpt in UTF-8 bytes, 1 KiB by default, never splitting a character", async () => {
    const { broker, queue, worker } = fixture("excerpt");
    const admin = createAdmin({ broker });
    // Three-byte and four-byte characters: a bound in characters would return three to four times the bytes.
    for (const body of ["€".repeat(5_000), "😀".repeat(5_000), "short"]) {
      await publishRaw(broker, queue, body);
    }
    await worker({ queues: [queue] }).start();
    await deadLetters(broker, queue, 3);
    const views = await admin.listDeadLetters(queue);
    expect(views.map((v) => Buffer.byteLength(v.excerpt))).toEqual([1_023, 1_023, 5]);
    expect(views[0]?.excerpt).toBe(`${"€".repeat(340)}…`);
    expect(views[1]?.excerpt).toBe(`${"😀".repeat(255)}…`);
    expect(views[2]?.excerpt).toBe("short");
    for (const v of await admin.listDeadLetters(queue, { excerptBytes: 100 }))
      expect(Buffer.byteLength(v.excerpt)).toBeLessThanOrEqual(100);
    await expect(admin.listDeadLetters(queue, { excerptBytes: 2 })).rejects.toMatchObject({ code: "invalid-options" });
  });

  it("requeues a dead letter as a fresh attempt 1 without its last error", async () => {
    const f = fixture("requeue");
    const job = f.job<string>("r", { maxAttempts: 2, backoff: noDelay });
    const admin = createAdmin({ broker: f.broker });
    let fail = true;
    const attempts: number[] = [];
    const worker = f.worker().handle(job, (_p, ctx) => {
      attempts.push(ctx.job.attempt);
      if (fail) throw new Error("down");
    });
    await worker.start();
    const dead = waitForEvent(worker, "job.dead-lettered");
    const { id } = await f.client.enqueue(job, "p");
    await dead;
    const views = await admin.listDeadLetters(f.queue, { excerptBytes: 10 });
    expect(views).toHaveLength(1);
    expect(views[0]).toMatchObject({ id, name: "r", attempt: 2, reason: "max-attempts", error: { message: "down" } });
    expect(views[0]?.excerpt).toMatch(/^\{.{6}…$/);
    expect(await admin.counts(f.queue)).toMatchObject({ dead: 1 });
    fail = false;
    const succeeded = waitForEvent(worker, "job.succeeded");
    expect(await admin.requeueDeadLetters(f.queue)).toBe(1);
    expect((await succeeded).job).toMatchObject({ id, attempt: 1 });
    expect(attempts).toEqual([1, 2, 1]);
    expect(await admin.counts(f.queue)).toMatchObject({ dead: 0 });
  });
});
