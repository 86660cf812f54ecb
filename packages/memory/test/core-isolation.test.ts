// The memory broker hands core its pre-split envelope (no body parse on delivery). These tests
// pin down that this shortcut keeps the semantics of a networked broker: the handler and test
// recorders get their own copy of the payload and metadata, never the caller's objects.

import { defineJob } from "@jobs/core";
import { type Envelope, encodeEnvelope } from "@jobs/core/adapter";
import { recordEnqueued, waitFor } from "@jobs/core/testing";
import { createMemoryServer } from "@jobs/memory";
import { describe, expect, it } from "vitest";
import { scope, uniqueQueue } from "./core-support.js";

describe("payload isolation on the memory broker", () => {
  it("runs the job with the payload and metadata as enqueued, even if the caller mutates them afterwards", async () => {
    const s = scope();
    const server = createMemoryServer();
    const producer = s.broker({ server });
    const consumer = s.broker({ server });
    const job = defineJob<{ user: { name: string }; tags: string[] }>({ name: "iso.copy", queue: uniqueQueue("iso") });
    const client = s.client(producer);
    const recorder = recordEnqueued(client);
    const payload = { user: { name: "Ada" }, tags: ["a"] };
    const metadata = { tenant: "t1" };
    await client.enqueue(job, payload, { metadata });
    payload.user.name = "Mallory";
    payload.tags.push("b");
    metadata.tenant = "t2";

    const seen: { payload: unknown; same: boolean; tenant: unknown }[] = [];
    s.worker({ broker: consumer })
      .handle(job, (p, { job: info }) => {
        seen.push({ payload: structuredClone(p), same: p === (payload as unknown), tenant: info.metadata?.tenant });
      })
      .start()
      .catch(() => undefined);
    await waitFor(() => seen.length === 1);
    expect(seen[0]).toEqual({ payload: { user: { name: "Ada" }, tags: ["a"] }, same: false, tenant: "t1" });
    expect(recorder.jobs(job)[0]?.envelope.payload).toEqual({ user: { name: "Ada" }, tags: ["a"] });
    expect(recorder.jobs(job)[0]?.envelope.meta).toEqual({ tenant: "t1" });
  });

  it("gives each delivery of the same message a fresh payload object", async () => {
    const s = scope();
    const server = createMemoryServer();
    const producer = s.broker({ server });
    const consumer = s.broker({ server });
    const job = defineJob<{ n: number[] }>({
      name: "iso.retry",
      queue: uniqueQueue("iso"),
      backoff: { type: "fixed", delay: 1 },
      maxAttempts: 2,
    });
    await s.client(producer).enqueue(job, { n: [1] });
    const payloads: { n: number[] }[] = [];
    s.worker({ broker: consumer })
      .handle(job, (p) => {
        payloads.push(p);
        p.n.push(99); // a handler mutating its payload must not leak into the next attempt
        if (payloads.length === 1) throw new Error("retry me");
      })
      .start()
      .catch(() => undefined);
    await waitFor(() => payloads.length === 2);
    expect(payloads[1]).not.toBe(payloads[0]);
    expect(payloads[1]?.n).toEqual([1, 99]);
    expect(payloads[0]?.n).toEqual([1, 99]);
  });
});

describe("retries carry the payload as sent, not as the handler left it", () => {
  it("re-encodes from the received body when the broker keeps no pre-split envelope", async () => {
    const s = scope();
    const server = createMemoryServer();
    const producer = s.broker({ server });
    const consumer = s.broker({ server });
    const queue = uniqueQueue("iso");
    const job = defineJob<{ n: number[] }>({ name: "iso.raw", queue, backoff: { type: "fixed", delay: 1 }, maxAttempts: 2 });
    const now = Date.now();
    const envelope: Envelope = {
      v: 1,
      id: `raw-${process.pid}`,
      name: job.name,
      queue,
      payload: { n: [1] },
      attempt: 1,
      maxAttempts: 2,
      priority: "normal",
      enqueuedAt: now,
      runAt: now,
      timeout: 10_000,
    };
    // A raw publish, as from another process or language: no `local`, so core decodes the body.
    await producer.publish(queue, [{ id: envelope.id, body: encodeEnvelope(envelope), priority: 2, delayMs: 0, dedupe: false }]);
    const seen: number[][] = [];
    s.worker({ broker: consumer })
      .handle(job, (p) => {
        seen.push([...p.n]);
        p.n.push(99);
        if (seen.length === 1) throw new Error("retry me");
      })
      .start()
      .catch(() => undefined);
    await waitFor(() => seen.length === 2);
    expect(seen).toEqual([[1], [1]]);
  });
});
