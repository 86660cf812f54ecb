/**
 * Job cases on the codec stage (docs/security.md): a signed and encrypted job round-trips on the
 * broker, the bytes the broker keeps (waiting message, dead letter, record) never hold the payload
 * in clear, and a forged message published straight to the broker is dead-lettered once with
 * reason `signature`, unrun.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { type CodecOptions, createAdmin } from "@jobs/core";
import { encodeEnvelope } from "@jobs/core/adapter";
import { waitFor } from "@jobs/core/testing";
import { expect, it } from "vitest";
import { group } from "../internal/fixture.js";
import { EMPTY, physicalQueueOf } from "../internal/harness.js";
import { rawEnvelope } from "../internal/jobs.js";
import type { ConformanceOptions } from "../options.js";

interface Secret {
  readonly secret: string;
  readonly fail?: boolean;
}

/** Keys of one case: a signing key and an encryption key, fresh each time. */
function keys(): CodecOptions {
  return {
    signing: { keys: { s1: randomBytes(32) }, current: "s1" },
    encryption: { keys: { e1: randomBytes(32) }, current: "e1" },
  };
}

/** Signed and encrypted jobs: round trip, sealed bytes on the broker, forged messages refused. */
export function jobSemanticsCodec(options: ConformanceOptions): void {
  group(options, "jobs: signed and encrypted jobs", ({ caps, t, jobCase, withStore }) => {
    it(
      "round-trips a signed and encrypted job; the waiting message (or its record) holds the payload sealed, never in clear",
      async () => {
        const codec = keys();
        const f = await jobCase("codec-trip", { client: { codec } });
        const job = f.job<Secret>("conformance.codec");
        const canary = `canary-${randomUUID()}`;
        const enqueued = await f.client.enqueue(job, { secret: canary });
        if (f.store === undefined) {
          // The message as the broker hands it out, read through a consumer of its own and put back.
          const physical = physicalQueueOf(f.q, caps);
          let body = "";
          let handedBack!: () => void;
          const got = new Promise<void>((resolve) => {
            handedBack = resolve;
          });
          const subscription = await f.producer.consume(physical, { prefetch: 1, leaseMs: t.lease }, (delivery) => {
            if (body === "") body = delivery.body;
            delivery.defer(0).then(handedBack, handedBack);
          });
          await got;
          await subscription.stop();
          expect(body).toContain('"$enc":"v1.e1.');
          expect(body).toMatch(/,"sig":"s1\.[A-Za-z0-9_-]{43}"\}$/);
          expect(body).not.toContain(canary);
        } else {
          const record = await f.store.get(enqueued.id);
          expect(record?.payloadJson).toMatch(/^\{"\$enc":"v1\.e1\./);
          expect(record?.payloadJson).not.toContain(canary);
        }
        const seen: Secret[] = [];
        const worker = await f.run(
          job,
          (payload) => {
            seen.push(payload);
          },
          { codec },
        );
        // The job was waiting before the worker started: it may be done before anyone could listen.
        await waitFor(() => worker.of("job.succeeded").length > 0, { timeout: t.wait, message: "waiting for the job to succeed" });
        expect(seen).toEqual([{ secret: canary }]);
        await f.expectCounts(EMPTY);
      },
      t.testTimeout,
    );

    it(
      "keeps dead letters sealed and signed (the admin decrypts with the key), and dead-letters a forged message once with reason signature, unrun",
      async () => {
        const codec = keys();
        const f = await jobCase("codec-dead", { client: { codec } });
        const job = f.job<Secret>("conformance.codec-dead", { maxAttempts: 1 });
        const seen: Secret[] = [];
        const worker = await f.run(
          job,
          (payload) => {
            seen.push(payload);
            if (payload.fail === true) throw new Error("failing on purpose");
          },
          { codec },
        );
        const canary = `canary-${randomUUID()}`;
        let dead = worker.next("job.dead-lettered", t.wait);
        const failing = await f.client.enqueue(job, { secret: canary, fail: true });
        expect((await dead).reason).toBe("max-attempts");

        // A producer without the key (anyone who can write to the broker) publishes straight to it.
        const forged = rawEnvelope(f.q, job.name, { secret: "forged" });
        dead = worker.next("job.dead-lettered", t.wait);
        const [outcome] = await f.producer.publish(physicalQueueOf(f.q, caps), [
          { id: forged.id, body: encodeEnvelope(forged), priority: 2, delayMs: 0, dedupe: true },
        ]);
        expect(outcome?.ok).toBe(true);
        const refused = await dead;
        expect(refused.reason).toBe("signature");
        expect(refused.error.code).toBe("signature");
        expect(refused.job).toBeUndefined();

        const letters = await f.producer.listDeadLetters(physicalQueueOf(f.q, caps), { limit: 10 });
        expect(letters.map((l) => l.reason).sort()).toEqual(["max-attempts", "signature"]);
        const kept = letters.find((l) => l.reason === "max-attempts");
        expect(kept?.body).toMatch(/,"sig":"s1\.[A-Za-z0-9_-]{43}"\}$/);
        expect(kept?.body).not.toContain(canary);
        expect(letters.find((l) => l.reason === "signature")?.body).toBe(encodeEnvelope(forged));

        const keyed = createAdmin({ broker: f.producer, codec, ...(f.store === undefined ? {} : { store: f.store }) });
        const views = await keyed.listDeadLetters(f.q);
        expect(views.find((v) => v.id === failing.id)?.payload).toEqual({ secret: canary, fail: true });
        expect((await f.admin.listDeadLetters(f.q)).every((v) => v.payload === undefined && !v.excerpt.includes(canary))).toBe(true);
        if (withStore) expect((await f.store?.get(failing.id))?.payloadJson).not.toContain(canary);

        expect(seen).toEqual([{ secret: canary, fail: true }]);
        expect(worker.of("job.dead-lettered").map((e) => e.reason)).toEqual(["max-attempts", "signature"]);
        await f.expectCounts({ ...EMPTY, dead: 2 });
      },
      t.testTimeout,
    );
  });
}
