// The memory broker hands core its pre-split envelope (no body parse on delivery). These tests
// pin down that this shortcut keeps the semantics of a networked broker: the handler and test
// recorders get their own copy of the payload and metadata, never the caller's objects.

import { describe, expect, it } from "vitest";
import { encodeEnvelope } from "../src/adapter/index.js";
import { defineJob } from "../src/index.js";
import { recordEnqueued, waitFor } from "../src/testing/index.js";
import { fixture, publishRaw, rawEnvelope } from "./support.js";

/** A producer broker (the fixture's, with its client) and a consumer broker of the same server. */
function producerAndConsumer() {
  const f = fixture("iso");
  return { ...f, consumer: f.scope.broker({ server: f.broker.server }) };
}

describe("payload isolation on the memory broker", () => {
  it("runs the job with the payload and metadata as enqueued, even if the caller mutates them afterwards", async () => {
    const { client, consumer, queue, worker } = producerAndConsumer();
    const job = defineJob<{ user: { name: string }; tags: string[] }>({ name: "iso.copy", queue });
    const recorder = recordEnqueued(client);
    const payload = { user: { name: "Ada" }, tags: ["a"] };
    const metadata = { tenant: "t1" };
    await client.enqueue(job, payload, { metadata });
    payload.user.name = "Mallory";
    payload.tags.push("b");
    metadata.tenant = "t2";

    const seen: { payload: unknown; same: boolean; tenant: unknown }[] = [];
    worker({ broker: consumer })
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
    const { client, consumer, queue, worker } = producerAndConsumer();
    const job = defineJob<{ n: number[] }>({ name: "iso.retry", queue, backoff: { type: "fixed", delay: 1 }, maxAttempts: 2 });
    await client.enqueue(job, { n: [1] });
    const payloads: { n: number[] }[] = [];
    worker({ broker: consumer })
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
    const { broker: producer, consumer, queue, worker } = producerAndConsumer();
    const job = defineJob<{ n: number[] }>({ name: "iso.raw", queue, backoff: { type: "fixed", delay: 1 }, maxAttempts: 2 });
    // A raw publish, as from another process or language: no `local`, so core decodes the body.
    await publishRaw(producer, queue, encodeEnvelope(rawEnvelope(queue, { name: job.name, payload: { n: [1] }, maxAttempts: 2 })));
    const seen: number[][] = [];
    worker({ broker: consumer })
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
