import { AssertionError } from "node:assert";
import { describe, expect, it } from "vitest";
import { defineJob } from "../src/index.js";
import { recordEnqueued, waitFor, waitForEvent } from "../src/testing/index.js";
import { fixture, rejection, uniqueQueue } from "./support.js";

function assertionError(fn: () => unknown): AssertionError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(AssertionError);
    return error as AssertionError;
  }
  throw new Error("expected an AssertionError");
}

describe("waitFor", () => {
  it("resolves with the first truthy value of the condition", async () => {
    let calls = 0;
    const value = await waitFor(() => (++calls >= 3 ? { calls } : 0), { interval: 1 });
    expect(value).toEqual({ calls: 3 });
  });

  it("awaits async conditions", async () => {
    let n = 0;
    expect(await waitFor(async () => (++n === 2 ? "done" : ""), { interval: 1 })).toBe("done");
  });

  it("keeps polling through errors and succeeds once the condition holds", async () => {
    let n = 0;
    const value = await waitFor(
      () => {
        if (++n < 3) throw new Error("not ready");
        return n;
      },
      { interval: 1 },
    );
    expect(value).toBe(3);
  });

  it("rejects after the timeout with its message", async () => {
    const started = Date.now();
    const error = await rejection(waitFor(() => false, { timeout: 60, interval: 5, message: "queue never drained" }));
    expect(error.message).toBe("queue never drained after 60 ms");
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
  });

  it("rejects with the default message and the condition's last error as cause", async () => {
    const last = new Error("still 3 waiting");
    const error = await rejection(
      waitFor(
        () => {
          throw last;
        },
        { timeout: 30, interval: 5 },
      ),
    );
    expect(error.message).toBe("waitFor timed out after 30 ms: still 3 waiting");
    expect(error.cause).toBe(last);
  });
});

describe("waitForEvent", () => {
  it("resolves with the first matching event and unsubscribes", async () => {
    const { queue, client } = fixture("wait-event");
    const job = defineJob<number>({ name: "e", queue });
    const third = waitForEvent(client, "job.enqueued", (e) => e.job.name === "e" && e.duplicate === false);
    const r = await client.enqueue(job, 1);
    expect((await third).job.id).toBe(r.id);
  });

  it("applies the predicate", async () => {
    const { queue, client } = fixture("wait-predicate");
    const job = defineJob<number>({ name: "e", queue });
    const dup = waitForEvent(client, "job.enqueued", (e) => e.duplicate);
    await client.enqueue(job, 1, { id: "same" });
    await client.enqueue(job, 2, { id: "other" });
    const second = await client.enqueue(job, 1, { id: "same" });
    const event = await dup;
    expect(event.duplicate).toBe(true);
    expect(event.job.id).toBe(second.id);
  });

  it("rejects after its timeout naming the event", async () => {
    const { client } = fixture("wait-timeout");
    const error = await rejection(waitForEvent(client, "job.enqueued", () => true, { timeout: 30 }));
    expect(error.message).toBe('waitForEvent("job.enqueued") timed out after 30 ms');
  });

  it("stops listening once settled", async () => {
    const { queue, client } = fixture("wait-off");
    const job = defineJob<number>({ name: "e", queue });
    let seen = 0;
    const first = waitForEvent(client, "job.enqueued", () => {
      seen++;
      return true;
    });
    await client.enqueue(job, 1);
    await first;
    await client.enqueue(job, 2);
    expect(seen).toBe(1);
  });
});

describe("recordEnqueued", () => {
  it("records accepted jobs and finds them by payload, predicate, queue, window and count", async () => {
    const { queue, client } = fixture("record");
    const other = uniqueQueue("record-other");
    const email = defineJob<{ to: string; n?: number }>({ name: "email.send", queue });
    const report = defineJob<{ day: string }>({ name: "report", queue: other });
    const recorder = recordEnqueued(client);
    const now = Date.now();
    await client.enqueue(email, { to: "a@example.com" });
    await client.enqueue(email, { to: "b@example.com", n: 2 }, { delay: "1h" });
    await client.enqueue(report, { day: "2024-01-01" });

    expect(recorder.assertEnqueued(email)).toHaveLength(2);
    expect(recorder.assertEnqueued(email, { payload: { to: "a@example.com" } })).toHaveLength(1);
    expect(recorder.assertEnqueued(email, { payload: (p) => p.to.startsWith("b"), count: 1 })[0]?.envelope.payload).toEqual({
      to: "b@example.com",
      n: 2,
    });
    recorder.assertEnqueued(email, { queue, count: 2 });
    recorder.assertEnqueued(email, { scheduledBetween: [now + 3_500_000, new Date(Date.now() + 3_700_000)], count: 1 });
    recorder.assertEnqueued(email, { scheduledBetween: [now, Date.now()], count: 1 });
    recorder.assertEnqueued(report, { queue: other, count: 1 });
    recorder.assertNotEnqueued(email, { payload: { to: "c@example.com" } });
    recorder.assertNotEnqueued(email, { queue: other });
    recorder.assertNotEnqueued(report, { scheduledBetween: [now + 60_000, now + 120_000] });

    expect(recorder.jobs()).toHaveLength(3);
    expect(recorder.jobs(email).map((r) => r.envelope.payload)).toEqual([{ to: "a@example.com" }, { to: "b@example.com", n: 2 }]);
  });

  it("compares payloads deeply and strictly", async () => {
    const { queue, client } = fixture("record-strict");
    const job = defineJob<{ to: string; n?: number }>({ name: "strict", queue });
    const recorder = recordEnqueued(client);
    await client.enqueue(job, { to: "a", n: 1 });
    assertionError(() => recorder.assertEnqueued(job, { payload: { to: "a" } }));
    assertionError(() => recorder.assertEnqueued(job, { payload: { to: "a", n: "1" as unknown as number } }));
    recorder.assertEnqueued(job, { payload: { to: "a", n: 1 } });
  });

  it("throws an AssertionError that shows what was enqueued", async () => {
    const { queue, client } = fixture("record-fail");
    const job = defineJob<{ to: string }>({ name: "email.send", queue });
    const recorder = recordEnqueued(client);
    const none = assertionError(() => recorder.assertEnqueued(job));
    expect(none.message).toContain('expected at least 1 "email.send" job(s) matching, found 0');
    await client.enqueue(job, { to: "a@example.com" });
    await client.enqueue(job, { to: "a@example.com" });
    const wrongCount = assertionError(() => recorder.assertEnqueued(job, { payload: { to: "a@example.com" }, count: 1 }));
    expect(wrongCount.message).toContain('expected 1 "email.send" job(s) matching, found 2');
    expect(wrongCount.message).toContain('"to":"a@example.com"');
    expect(wrongCount.message).toContain(queue);
    expect(wrongCount.actual).toBe(2);
    expect(wrongCount.expected).toBe(1);
    const unwanted = assertionError(() => recorder.assertNotEnqueued(job, { payload: { to: "a@example.com" } }));
    expect(unwanted.message).toBe('expected no "email.send" job matching, found 2');
  });

  it("records duplicates as such", async () => {
    const { queue, client } = fixture("record-dup");
    const job = defineJob<number>({ name: "d", queue });
    const recorder = recordEnqueued(client);
    await client.enqueue(job, 1, { id: "x1" });
    await client.enqueue(job, 1, { id: "x1" });
    expect(recorder.jobs(job).map((r) => r.duplicate)).toEqual([false, true]);
  });

  it("records nothing that was rejected, and stops on clear() and stop()", async () => {
    const { queue, client } = fixture("record-stop");
    const job = defineJob<unknown>({ name: "r", queue });
    const recorder = recordEnqueued(client);
    await expect(client.enqueue(job, { bad: new Date() })).rejects.toThrow();
    expect(recorder.jobs()).toEqual([]);
    await client.enqueue(job, 1);
    recorder.clear();
    expect(recorder.jobs()).toEqual([]);
    await client.enqueue(job, 2);
    recorder.stop();
    await client.enqueue(job, 3);
    expect(recorder.jobs().map((r) => r.envelope.payload)).toEqual([2]);
  });

  it("keeps recorders of two clients apart", async () => {
    const { broker, queue, client: a, scope } = fixture("record-two");
    const b = scope.client(broker);
    const job = defineJob<string>({ name: "two", queue });
    const ra = recordEnqueued(a);
    const rb = recordEnqueued(b);
    await a.enqueue(job, "from a");
    rb.assertNotEnqueued(job);
    ra.assertEnqueued(job, { payload: "from a", count: 1 });
  });
});
