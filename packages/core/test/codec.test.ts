// The codec stage on the in-process broker (docs/security.md): signing and encryption, key
// rotation, forged messages, and what the broker and the store hold. The same round trip runs on
// every adapter in the conformance suite ("jobs: signed and encrypted jobs").
import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { createMemoryStore } from "@jobs/memory";
import { describe, expect, it } from "vitest";
import { encodeEnvelope } from "../src/adapter/index.js";
import { createCodec } from "../src/codec.js";
import {
  CodecKeyError,
  type CodecOptions,
  createAdmin,
  createClient,
  createWorker,
  DecryptError,
  JobsError,
  SignatureError,
} from "../src/index.js";
import { waitForEvent } from "../src/testing/index.js";
import { deadLetters, fixture, noDelay, publishRaw, rawEnvelope } from "./support.js";

const key = (): Buffer => randomBytes(32);
const SIGN_OLD = key();
const SIGN_NEW = key();
const ENC_OLD = key();
const ENC_NEW = key();

const both: CodecOptions = {
  signing: { keys: { s1: SIGN_NEW }, current: "s1" },
  encryption: { keys: { e1: ENC_NEW.toString("base64") }, current: "e1" },
};

interface RawQueue {
  readonly ready: { length: number; shift(): unknown; push(m: unknown): void }[];
  readonly active: Set<unknown>;
  readonly dead: unknown[];
}

/**
 * Every message the in-process broker holds, as its internals keep them (body and any pre-split
 * form): the ready lists are read by taking each message out and putting it back, in order.
 */
function brokerState(broker: { server: unknown }): string {
  const queues = (broker.server as { queues: Map<string, RawQueue> }).queues;
  const held: unknown[] = [];
  for (const queue of queues.values()) {
    for (const list of queue.ready) {
      const taken = Array.from({ length: list.length }, () => list.shift());
      for (const m of taken) list.push(m);
      held.push(...taken);
    }
    held.push(...queue.active, ...queue.dead);
  }
  return inspect(held, { depth: Number.POSITIVE_INFINITY, maxArrayLength: null, maxStringLength: null });
}

describe("codec: keys are checked at construction", () => {
  const broker = { consume() {}, publish() {}, counts() {}, capabilities: { maxPayloadBytes: 1 }, name: "x" } as never;
  const bad: [string, CodecOptions, string][] = [
    ["a short signing key", { signing: { keys: { k: key().subarray(0, 16) }, current: "k" } }, "codec.signing.keys.k"],
    ["a 31-byte encryption key", { encryption: { keys: { k: key().subarray(0, 31) }, current: "k" } }, "codec.encryption.keys.k"],
    ["a 33-byte encryption key", { encryption: { keys: { k: randomBytes(33) }, current: "k" } }, "codec.encryption.keys.k"],
    ["an unknown current key id", { signing: { keys: { k: key() }, current: "other" } }, "codec.signing.current"],
    ["a key id with a dot", { signing: { keys: { "k.1": key() }, current: "k.1" } }, "codec.signing.keys"],
    ["a key that is not base64", { signing: { keys: { k: "not base64!".repeat(5) }, current: "k" } }, "codec.signing.keys.k"],
    ["no keys object", { signing: { current: "k" } as never }, "codec.signing"],
  ];
  for (const [what, options, field] of bad) {
    it(`refuses ${what} with CodecKeyError naming ${field}, in createClient, createWorker and createAdmin`, () => {
      for (const create of [
        () => createClient({ broker, codec: options }),
        () => createWorker({ broker, codec: options }),
        () => createAdmin({ broker, codec: options }),
      ]) {
        let error: unknown;
        try {
          create();
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(CodecKeyError);
        expect((error as CodecKeyError).code).toBe("invalid-options");
        expect((error as CodecKeyError).field).toBe(field);
      }
    });
  }

  it("never shows a key in the error", () => {
    const secret = Buffer.alloc(20, 7).toString("base64");
    try {
      createCodec({ signing: { keys: { k: secret }, current: "k" } });
      expect.unreachable();
    } catch (error) {
      expect(inspect(error, { depth: 5 })).not.toContain(secret);
      expect((error as Error).message).toContain("20 bytes");
    }
  });

  it("accepts base64 and base64url strings and raw bytes", () => {
    const k = key();
    for (const form of [k, k.toString("base64"), k.toString("base64url")]) {
      expect(createCodec({ encryption: { keys: { k: form }, current: "k" }, signing: { keys: { k: form }, current: "k" } }).active).toBe(
        true,
      );
    }
  });
});

describe("codec: signed and encrypted jobs on the memory broker", () => {
  it("round-trips the payload; the broker holds it sealed, with a signature, and never in clear", async () => {
    const f = fixture("codec-trip");
    const canary = `canary-${crypto.randomUUID()}`;
    const job = f.job<{ secret: string; n: number }>("codec.trip");
    const client = createClient({ broker: f.broker, codec: both });
    await client.enqueue(job, { secret: canary, n: 1 });
    const state = brokerState(f.broker);
    expect(state).toContain('"$enc":"v1.e1.');
    expect(state).toContain(',"sig":"s1.');
    expect(state).not.toContain(canary);
    const got: unknown[] = [];
    const worker = f.worker({ codec: both }).handle(job, (payload) => {
      got.push(payload);
    });
    const done = waitForEvent(worker, "job.succeeded");
    await worker.start();
    await done;
    expect(got).toEqual([{ secret: canary, n: 1 }]);
  });

  it("retries and dead letters keep the payload sealed and signed; the admin decrypts only with the key and requeues signed", async () => {
    const f = fixture("codec-dead");
    const canary = `canary-${crypto.randomUUID()}`;
    const job = f.job<{ secret: string }>("codec.dead", { maxAttempts: 2, backoff: noDelay });
    const client = createClient({ broker: f.broker, codec: both });
    const seen: unknown[] = [];
    let fail = true;
    const worker = f.worker({ codec: both }).handle(job, (payload) => {
      seen.push(payload);
      if (fail) throw new Error("boom");
    });
    await worker.start();
    const dead = waitForEvent(worker, "job.dead-lettered");
    await client.enqueue(job, { secret: canary });
    expect((await dead).reason).toBe("max-attempts");
    expect(seen).toEqual([{ secret: canary }, { secret: canary }]);
    const [letter] = await deadLetters(f.broker, f.queue, 1);
    expect(letter?.body).toContain(',"sig":"s1.');
    expect(letter?.body).not.toContain(canary);
    expect(brokerState(f.broker)).not.toContain(canary);

    const blind = await createAdmin({ broker: f.broker }).listDeadLetters(f.queue);
    expect(blind[0]?.payload).toBeUndefined();
    expect(blind[0]?.excerpt).not.toContain(canary);
    const keyed = createAdmin({ broker: f.broker, codec: both });
    expect((await keyed.listDeadLetters(f.queue))[0]?.payload).toEqual({ secret: canary });

    fail = false;
    const ok = waitForEvent(worker, "job.succeeded");
    expect(await keyed.requeueDeadLetters(f.queue)).toBe(1);
    await ok;
    expect(seen).toHaveLength(3);
  });

  it("a forged, unsigned or tampered message written straight into the broker never runs: one dead letter each, reason signature, bytes kept", async () => {
    const f = fixture("codec-forged");
    const job = f.job<{ n: number }>("codec.forged");
    let ran = 0;
    const worker = f.worker({ codec: both }).handle(job, () => {
      ran++;
    });
    const events: string[] = [];
    worker.on("job.dead-lettered", (e) => events.push(`${e.reason}:${e.error.code}`));
    await worker.start();
    const unsigned = encodeEnvelope(rawEnvelope(f.queue, { name: job.name, payload: { n: 1 } }));
    // Signed with a key the worker does not have.
    const foreign = createCodec({ signing: { keys: { s1: key() }, current: "s1" } }).sign(unsigned);
    // Signed with the right key, then changed.
    const tampered = createCodec(both).sign(unsigned).replace('"attempt":1', '"attempt":2');
    // The right key, but a key id the worker does not know.
    const unknownId = createCodec({ signing: { keys: { s9: SIGN_NEW }, current: "s9" } }).sign(unsigned);
    const bodies = [unsigned, foreign, tampered, unknownId];
    for (const body of bodies) await publishRaw(f.broker, f.queue, body);
    const letters = await deadLetters(f.broker, f.queue, bodies.length);
    expect(letters.map((l) => l.reason)).toEqual(bodies.map(() => "signature"));
    expect(letters.map((l) => l.body).sort()).toEqual([...bodies].sort());
    expect(events).toEqual(bodies.map(() => "signature:signature"));
    expect(ran).toBe(0);
    // And the worker still runs what is signed.
    const ok = waitForEvent(worker, "job.succeeded");
    await createClient({ broker: f.broker, codec: both }).enqueue(job, { n: 2 });
    await ok;
    expect(ran).toBe(1);
    expect(await f.broker.listDeadLetters(f.queue, { limit: 10 })).toHaveLength(bodies.length);
  });

  it("a client without the keys in the same process (its pre-split form beside the body) is refused too: the body is checked", async () => {
    const f = fixture("codec-local");
    const job = f.job<{ n: number }>("codec.local");
    let ran = 0;
    const worker = f.worker({ codec: both }).handle(job, () => {
      ran++;
    });
    await worker.start();
    const dead = waitForEvent(worker, "job.dead-lettered");
    await f.client.enqueue(job, { n: 1 });
    expect((await dead).reason).toBe("signature");
    expect(ran).toBe(0);
  });

  it("an admin with the key does not re-sign a forged dead letter on requeue: it comes back refused again", async () => {
    const f = fixture("codec-launder");
    const job = f.job<{ n: number }>("codec.launder");
    let ran = 0;
    const worker = f.worker({ codec: both }).handle(job, () => {
      ran++;
    });
    await worker.start();
    const forged = encodeEnvelope(rawEnvelope(f.queue, { name: job.name, payload: { n: 1 } }));
    let dead = waitForEvent(worker, "job.dead-lettered");
    await publishRaw(f.broker, f.queue, forged);
    await dead;
    dead = waitForEvent(worker, "job.dead-lettered");
    expect(await createAdmin({ broker: f.broker, codec: both }).requeueDeadLetters(f.queue)).toBe(1);
    expect((await dead).reason).toBe("signature");
    expect(ran).toBe(0);
  });

  it("required: false accepts unsigned and clear messages (roll-out), yet still refuses a bad signature", async () => {
    const f = fixture("codec-rollout");
    const job = f.job<{ n: number }>("codec.rollout");
    const lenient: CodecOptions = {
      signing: { keys: { s1: SIGN_NEW }, current: "s1", required: false },
      encryption: { keys: { e1: ENC_NEW }, current: "e1", required: false },
    };
    const got: unknown[] = [];
    const worker = f.worker({ codec: lenient }).handle(job, (p) => {
      got.push(p);
    });
    await worker.start();
    const ok = waitForEvent(worker, "job.succeeded");
    await f.client.enqueue(job, { n: 1 });
    await ok;
    const dead = waitForEvent(worker, "job.dead-lettered");
    const foreign = createCodec({ signing: { keys: { s1: key() }, current: "s1" } });
    await publishRaw(f.broker, f.queue, foreign.sign(encodeEnvelope(rawEnvelope(f.queue, { name: job.name, payload: { n: 2 } }))));
    expect((await dead).reason).toBe("signature");
    expect(got).toEqual([{ n: 1 }]);
  });

  it("a worker that encrypts refuses a clear payload, and one without the key refuses a sealed one, as undecodable", async () => {
    const f = fixture("codec-clear");
    const job = f.job<{ n: number }>("codec.clear");
    const encOnly: CodecOptions = { encryption: { keys: { e1: ENC_NEW }, current: "e1" } };
    let ran = 0;
    const worker = f.worker({ codec: encOnly }).handle(job, () => {
      ran++;
    });
    await worker.start();
    let dead = waitForEvent(worker, "job.dead-lettered");
    await f.client.enqueue(job, { n: 1 });
    let event = await dead;
    expect(event).toMatchObject({ reason: "undecodable", error: { code: "decrypt" } });
    await worker.close();

    // No encryption key at all: a sealed payload is refused, not handed to the handler as `{ $enc }`.
    const signOnly = f.worker({ codec: { signing: { keys: { s1: SIGN_NEW }, current: "s1", required: false } } }).handle(job, () => {
      ran++;
    });
    await signOnly.start();
    dead = waitForEvent(signOnly, "job.dead-lettered");
    await createClient({ broker: f.broker, codec: encOnly }).enqueue(job, { n: 2 });
    event = await dead;
    expect(event).toMatchObject({ reason: "undecodable", error: { code: "decrypt" } });
    expect(event.error.message).toContain("no encryption key");
    expect(ran).toBe(0);
  });
});

describe("codec: key rotation", () => {
  const codec = (current: "old" | "new", keys: { old?: true; new?: true }): CodecOptions => ({
    signing: { keys: { ...(keys.old ? { old: SIGN_OLD } : {}), ...(keys.new ? { new: SIGN_NEW } : {}) }, current },
    encryption: { keys: { ...(keys.old ? { old: ENC_OLD } : {}), ...(keys.new ? { new: ENC_NEW } : {}) }, current },
  });

  it("during the overlap the old key still verifies and decrypts; once removed, its jobs are refused unrun", async () => {
    const f = fixture("codec-rotate");
    const job = f.job<{ n: number }>("codec.rotate");
    const oldClient = createClient({ broker: f.broker, codec: codec("old", { old: true }) });
    const newClient = createClient({ broker: f.broker, codec: codec("new", { old: true, new: true }) });
    const got: unknown[] = [];
    // Overlap: the worker signs with the new key and still has the old one.
    const overlap = f.worker({ codec: codec("new", { old: true, new: true }) }).handle(job, (p) => {
      got.push(p);
    });
    await overlap.start();
    let ok = waitForEvent(overlap, "job.succeeded");
    await oldClient.enqueue(job, { n: 1 });
    await ok;
    ok = waitForEvent(overlap, "job.succeeded");
    await newClient.enqueue(job, { n: 2 });
    await ok;
    expect(got).toEqual([{ n: 1 }, { n: 2 }]);
    await overlap.close();

    // The old key removed.
    const after = f.worker({ codec: codec("new", { new: true }) }).handle(job, (p) => {
      got.push(p);
    });
    await after.start();
    const dead = waitForEvent(after, "job.dead-lettered");
    await oldClient.enqueue(job, { n: 3 });
    const event = await dead;
    expect(event.reason).toBe("signature");
    expect(event.error.message).toContain('key "old"');
    ok = waitForEvent(after, "job.succeeded");
    await newClient.enqueue(job, { n: 4 });
    await ok;
    expect(got).toEqual([{ n: 1 }, { n: 2 }, { n: 4 }]);
  });

  it("an encryption key removed while signatures still check: the job is refused as undecodable (decrypt), unrun", async () => {
    const f = fixture("codec-rotate-enc");
    const job = f.job<{ n: number }>("codec.rotate-enc");
    const sign = { keys: { s: SIGN_NEW }, current: "s" };
    const client = createClient({ broker: f.broker, codec: { signing: sign, encryption: { keys: { old: ENC_OLD }, current: "old" } } });
    const worker = f.worker({ codec: { signing: sign, encryption: { keys: { new: ENC_NEW }, current: "new" } } }).handle(job, () => {
      expect.unreachable();
    });
    await worker.start();
    const dead = waitForEvent(worker, "job.dead-lettered");
    await client.enqueue(job, { n: 1 });
    const event = await dead;
    expect(event).toMatchObject({ reason: "undecodable", error: { code: "decrypt" } });
    expect(event.error.message).toContain('key "old"');
  });
});

describe("codec: job records", () => {
  it("the store keeps the payload sealed; getJob decrypts with the key and shows it sealed without", async () => {
    const f = fixture("codec-store");
    const store = createMemoryStore();
    const canary = `canary-${crypto.randomUUID()}`;
    const job = f.job<{ secret: string }>("codec.store");
    const client = createClient({ broker: f.broker, store, codec: both });
    const worker = f.worker({ store, codec: both }).handle(job, (p) => p.secret.length);
    await worker.start();
    const handle = await client.enqueue(job, { secret: canary });
    expect(await handle.result()).toBe(canary.length);
    const stored = await store.get(handle.id);
    expect(stored?.payloadJson).toMatch(/^\{"\$enc":"v1\.e1\./);
    expect(stored?.payloadJson).not.toContain(canary);
    expect((await client.getJob(handle.id))?.payload).toEqual({ secret: canary });
    const blind = createClient({ broker: f.broker, store });
    expect(JSON.stringify((await blind.getJob(handle.id))?.payload)).not.toContain(canary);
    expect(brokerState(f.broker)).not.toContain(canary);
  });
});

describe("codec: errors", () => {
  it("SignatureError and DecryptError are JobsErrors with their codes", () => {
    const codec = createCodec(both);
    const err = (fn: () => unknown): unknown => {
      try {
        fn();
      } catch (e) {
        return e;
      }
      return undefined;
    };
    const s = err(() => codec.verify('{"v":1}'));
    expect(s).toBeInstanceOf(SignatureError);
    expect(JobsError.isInstance(s) && s.code).toBe("signature");
    const d = err(() => codec.openPayload({ $enc: "v1.e1.AAAA" }, "id", "name"));
    expect(d).toBeInstanceOf(DecryptError);
    expect(JobsError.isInstance(d) && d.code).toBe("decrypt");
    const sealed = JSON.parse(codec.sealPayload('{"a":1}', "id-1", "job.a"));
    expect(codec.openPayload(sealed, "id-1", "job.a")).toEqual({ a: 1 });
    // Bound to its job: the same ciphertext moved to another job id or name does not open.
    expect(err(() => codec.openPayload(sealed, "id-2", "job.a"))).toBeInstanceOf(DecryptError);
    expect(err(() => codec.openPayload(sealed, "id-1", "job.b"))).toBeInstanceOf(DecryptError);
  });
});
