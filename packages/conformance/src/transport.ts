/**
 * Transport cases: the Broker contract alone (publish, consume, the Delivery operations, counts,
 * dead letters, purge, close), with no core worker and no broker-specific command.
 */
import { randomUUID } from "node:crypto";
import type { DeadLetterRecord, PriorityLevel } from "@jobs/core/adapter";
import { waitFor } from "@jobs/core/testing";
import { describe, expect, it } from "vitest";
import {
  EMPTY,
  expectCounts,
  expectJobsError,
  group,
  Inbox,
  message,
  publishAll,
  quietWindow,
  rejectionOf,
  useScope,
} from "./internal/harness.js";
import type { ConformanceOptions } from "./options.js";

const MIB = 1_048_576;

/** Round trip and payload fidelity: bodies arrive once, byte for byte, batches resolve one outcome per message. */
export function transportRoundTrip(options: ConformanceOptions): void {
  group(options, "transport: round trip and payload fidelity", ({ caps, t }) => {
    it(
      "delivers a published message once, with its exact body and deliveryCount 1",
      async () => {
        const s = useScope(options);
        const q = s.queue("rt");
        const [producer, consumer] = await s.brokers(2);
        const inbox = new Inbox();
        await consumer!.consume(q, { prefetch: 10, leaseMs: t.longLease }, inbox.onDelivery);
        const body = JSON.stringify({ v: 1, hello: "world", n: 42 });
        await publishAll(producer!, q, [message(body)]);
        const [received] = await inbox.waitForCount(1, t.wait);
        expect(received!.body).toBe(body);
        expect(received!.deliveryCount).toBe(1);
        await received!.delivery.ack();
        await expectCounts(producer!, q, EMPTY, t.wait);
        await quietWindow(t.quiet);
        expect(inbox.received).toHaveLength(1);
      },
      t.testTimeout,
    );

    it(
      "keeps unicode, whitespace and escapes byte for byte",
      async () => {
        const s = useScope(options);
        const q = s.queue("fidelity");
        const [producer, consumer] = await s.brokers(2);
        const bodies = [
          JSON.stringify({ text: "héllo wörld — ñandú, 日本語, 한국어, русский, ελληνικά" }),
          JSON.stringify({ emoji: "😀👩‍👩‍👧‍👦🏳️‍🌈🇯🇵", astral: "𝄞𝕏𐍈" }),
          JSON.stringify({ rtl: "שלום עולם مرحبا", combining: "e\u0301 a\u0308 n\u0303", zwj: "a\u200db\u200cc\ufeff" }),
          JSON.stringify({ separators: "\u2028\u2029", controls: "\u0000\u0001\u001f\t\n\r\u007f", quotes: "\"'`\\/" }),
          JSON.stringify({ escaped: "\\u0041 is not A", slash: "a\\/b", nested: '{"inner":"json"}' }),
          `{\n\t"pretty": [1, 2,\r\n 3],   "trailing": "spaces"   \n}\n`,
          "  leading and trailing whitespace  ",
          "x",
        ];
        const inbox = new Inbox({ autoAck: true });
        await consumer!.consume(q, { prefetch: 10, leaseMs: t.longLease }, inbox.onDelivery);
        await publishAll(
          producer!,
          q,
          bodies.map((b) => message(b)),
        );
        await inbox.waitForCount(bodies.length, t.wait);
        expect([...inbox.bodies()].sort()).toEqual([...bodies].sort());
        for (const body of inbox.bodies()) {
          const sent = bodies.find((b) => b === body);
          expect(Buffer.from(body, "utf8").equals(Buffer.from(sent!, "utf8"))).toBe(true);
        }
        await expectCounts(producer!, q, EMPTY, t.wait);
        expect(inbox.settleErrors).toEqual([]);
      },
      t.testTimeout,
    );

    it(
      "keeps a large multi-byte body intact",
      async () => {
        const s = useScope(options);
        const q = s.queue("large");
        const [producer, consumer] = await s.brokers(2);
        const target = Math.min(256 * 1024, Math.floor(caps.maxPayloadBytes / 2));
        const alphabet = ["a", "Z", "0", " ", "é", "ß", "€", "日", "😀", "\\n", '\\"'];
        const parts: string[] = [];
        let bytes = 0;
        let seed = 7;
        while (bytes < target) {
          seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
          const part = alphabet[seed % alphabet.length] as string;
          parts.push(part);
          bytes += Buffer.byteLength(part, "utf8");
        }
        const body = JSON.stringify({ blob: parts.join("") });
        const inbox = new Inbox({ autoAck: true });
        await consumer!.consume(q, { prefetch: 1, leaseMs: t.longLease }, inbox.onDelivery);
        await publishAll(producer!, q, [message(body)]);
        const [received] = await inbox.waitForCount(1, t.wait);
        expect(received!.body.length).toBe(body.length);
        expect(Buffer.from(received!.body, "utf8").equals(Buffer.from(body, "utf8"))).toBe(true);
      },
      t.testTimeout,
    );

    it(
      "resolves one outcome per message of a batch, in order, and delivers every one",
      async () => {
        const s = useScope(options);
        const q = s.queue("batch");
        const [producer, consumer] = await s.brokers(2);
        const bodies = Array.from({ length: 25 }, (_, i) => `batch-${i}`);
        const outcomes = await producer!.publish(
          q,
          bodies.map((b) => message(b)),
        );
        expect(outcomes).toHaveLength(bodies.length);
        for (const outcome of outcomes) expect(outcome).toEqual({ ok: true, duplicate: false });
        const inbox = new Inbox({ autoAck: true });
        await consumer!.consume(q, { prefetch: 10, leaseMs: t.longLease }, inbox.onDelivery);
        await inbox.waitForCount(bodies.length, t.wait);
        expect([...inbox.bodies()].sort()).toEqual([...bodies].sort());
        await expectCounts(producer!, q, EMPTY, t.wait);
        expect(inbox.settleErrors).toEqual([]);
      },
      t.testTimeout,
    );
  });
}

/** No loss and no duplicates: N messages to K competing consumers on separate instances run N times in total. */
export function transportCompetingConsumers(options: ConformanceOptions): void {
  group(options, "transport: competing consumers", ({ t }) => {
    it(
      "delivers each of N messages exactly once across K consumers on separate broker instances",
      async () => {
        const s = useScope(options);
        const q = s.queue("compete");
        const n = 60;
        const k = 3;
        const producer = await s.broker();
        const inboxes: Inbox[] = [];
        for (let i = 0; i < k; i++) {
          const consumer = await s.broker();
          const inbox = new Inbox();
          inboxes.push(inbox);
          // Settle asynchronously, as a real handler would.
          await consumer.consume(q, { prefetch: 5, leaseMs: t.longLease }, (delivery) => {
            inbox.onDelivery(delivery);
            setImmediate(() => {
              delivery.ack().catch((error: unknown) => inbox.settleErrors.push(error));
            });
          });
        }
        const bodies = Array.from({ length: n }, (_, i) => `compete-${i}`);
        for (let i = 0; i < n; i += 10) {
          await publishAll(
            producer,
            q,
            bodies.slice(i, i + 10).map((b) => message(b)),
          );
        }
        const total = (): number => inboxes.reduce((sum, inbox) => sum + inbox.received.length, 0);
        await waitFor(() => total() >= n, { timeout: t.wait, message: `expected ${n} deliveries` });
        await expectCounts(producer, q, EMPTY, t.wait);
        await quietWindow(t.quiet);
        const all = inboxes.flatMap((inbox) => inbox.bodies());
        expect(all).toHaveLength(n);
        expect(new Set(all).size).toBe(n);
        expect([...all].sort()).toEqual([...bodies].sort());
        for (const inbox of inboxes) {
          expect(inbox.settleErrors).toEqual([]);
          for (const r of inbox.received) expect(r.deliveryCount).toBe(1);
        }
      },
      t.testTimeout,
    );
  });
}

/** Redelivery when a consumer dies: unsettled deliveries of a closed instance go to another consumer. */
export function transportRedelivery(options: ConformanceOptions): void {
  group(options, "transport: redelivery after a consumer dies", ({ caps, t }) => {
    it(
      "hands deliveries left unsettled by a closed instance to another consumer, with deliveryCount > 1",
      async () => {
        const s = useScope(options);
        const q = s.queue("dies");
        const [producer, dying, survivor] = await s.brokers(3);
        const bodies = ["dies-0", "dies-1", "dies-2"];
        const held = new Inbox();
        await dying!.consume(q, { prefetch: 3, leaseMs: t.lease }, held.onDelivery);
        await publishAll(
          producer!,
          q,
          bodies.map((b) => message(b)),
        );
        await held.waitForCount(3, t.wait);
        const inbox = new Inbox({ autoAck: true });
        await survivor!.consume(q, { prefetch: 10, leaseMs: t.longLease }, inbox.onDelivery);
        await dying!.close();
        await inbox.waitForCount(3, t.wait);
        expect([...inbox.bodies()].sort()).toEqual(bodies);
        for (const r of inbox.received) expect(r.deliveryCount).toBeGreaterThan(1);
        for (const r of held.received) expectJobsError(await rejectionOf(r.delivery.ack()), ["lease-lost", "broker-closed"]);
        await expectCounts(producer!, q, EMPTY, t.wait);
        expect(inbox.settleErrors).toEqual([]);
      },
      t.testTimeout,
    );

    describe.skipIf(!caps.redeliverOnClose)("redelivery on close [needs capability: redeliverOnClose]", () => {
      it(
        "redelivers at once when the holding instance closes, long before the lease would expire",
        async () => {
          const s = useScope(options);
          const q = s.queue("onclose");
          const [producer, dying, survivor] = await s.brokers(3);
          const held = new Inbox();
          await dying!.consume(q, { prefetch: 2, leaseMs: t.longLease }, held.onDelivery);
          await publishAll(producer!, q, [message("onclose-0"), message("onclose-1")]);
          await held.waitForCount(2, t.wait);
          const inbox = new Inbox({ autoAck: true });
          await survivor!.consume(q, { prefetch: 10, leaseMs: t.longLease }, inbox.onDelivery);
          const closedAt = performance.now();
          await dying!.close();
          await inbox.waitForCount(2, Math.min(t.wait, t.longLease / 3));
          expect(performance.now() - closedAt).toBeLessThan(t.longLease / 3);
          expect([...inbox.bodies()].sort()).toEqual(["onclose-0", "onclose-1"]);
          for (const r of inbox.received) expect(r.deliveryCount).toBe(2);
        },
        t.testTimeout,
      );
    });
  });
}

/** Leases: an expired lease is redelivered and the old delivery can no longer settle; extendLease keeps it. */
export function transportLeases(options: ConformanceOptions): void {
  group(options, "transport: leases", ({ caps, t }) => {
    it(
      "redelivers to another consumer once the lease expires; the old delivery's ack then rejects",
      async () => {
        const s = useScope(options);
        const q = s.queue("lease");
        const [producer, slow, other] = await s.brokers(3);
        const held = new Inbox();
        const slowSub = await slow!.consume(q, { prefetch: 1, leaseMs: t.lease }, held.onDelivery);
        await publishAll(producer!, q, [message("lease-body")]);
        const [first] = await held.waitForCount(1, t.wait);
        // The slow consumer takes nothing more, so the redelivery can only go to the other one.
        await slowSub.stop();
        const inbox = new Inbox();
        await other!.consume(q, { prefetch: 1, leaseMs: t.longLease }, inbox.onDelivery);
        const [again] = await inbox.waitForCount(1, t.lease + t.wait);
        expect(again!.body).toBe("lease-body");
        expect(again!.deliveryCount).toBe(2);
        expect(again!.at - first!.at).toBeGreaterThanOrEqual(t.lease - t.slack);
        expectJobsError(await rejectionOf(first!.delivery.ack()), ["lease-lost", "broker-closed"]);
        await again!.delivery.ack();
        await expectCounts(producer!, q, EMPTY, t.wait);
      },
      t.testTimeout,
    );

    describe.skipIf(!caps.leaseExtension)("lease extension [needs capability: leaseExtension]", () => {
      it(
        "keeps a delivery for 3× its lease with extendLease, with no redelivery, then acks it",
        async () => {
          const s = useScope(options);
          const q = s.queue("extend");
          const [producer, holder, other] = await s.brokers(3);
          const held = new Inbox();
          const holderSub = await holder!.consume(q, { prefetch: 1, leaseMs: t.lease }, held.onDelivery);
          await publishAll(producer!, q, [message("extend-body")]);
          const [first] = await held.waitForCount(1, t.wait);
          await holderSub.stop();
          const inbox = new Inbox();
          await other!.consume(q, { prefetch: 1, leaseMs: t.longLease }, inbox.onDelivery);
          const until = first!.at + 3 * t.lease;
          while (performance.now() < until) {
            await first!.delivery.extendLease(t.lease);
            await quietWindow(t.lease / 3);
            expect(inbox.received).toHaveLength(0);
          }
          await first!.delivery.ack();
          expect(inbox.received).toHaveLength(0);
          await expectCounts(producer!, q, EMPTY, t.wait);
        },
        t.testTimeout,
      );
    });
  });
}

/** Settling: retry (next body, after its delay), defer (same body, deliveryCount reset), dead letters (listed, removable). */
export function transportSettlement(options: ConformanceOptions): void {
  group(options, "transport: retry, defer and dead letters", ({ t }) => {
    it(
      "retry(next) replaces the message: next body delivered with deliveryCount 1, not before its delay",
      async () => {
        const s = useScope(options);
        const q = s.queue("retry");
        const [producer, consumer] = await s.brokers(2);
        const inbox = new Inbox();
        await consumer!.consume(q, { prefetch: 5, leaseMs: t.longLease }, inbox.onDelivery);
        const first = message("attempt-1");
        await publishAll(producer!, q, [first]);
        const [got] = await inbox.waitForCount(1, t.wait);
        const retriedAt = performance.now();
        await got!.delivery.retry({ id: first.id, body: "attempt-2", priority: 2, delayMs: t.delay, dedupe: false });
        const [, next] = await inbox.waitForCount(2, t.delay + t.wait);
        expect(next!.body).toBe("attempt-2");
        expect(next!.deliveryCount).toBe(1);
        expect(next!.at - retriedAt).toBeGreaterThanOrEqual(t.delay - t.slack);
        await next!.delivery.ack();
        await expectCounts(producer!, q, EMPTY, t.wait);
        await quietWindow(t.quiet);
        expect(inbox.bodies()).toEqual(["attempt-1", "attempt-2"]);
      },
      t.testTimeout,
    );

    it(
      "defer(delayMs) hands the same body out again, not before the delay, with deliveryCount reset to 1",
      async () => {
        const s = useScope(options);
        const q = s.queue("defer");
        const [producer, dying, consumer] = await s.brokers(3);
        // First make the broker count a second delivery, so the reset is visible.
        const held = new Inbox();
        await dying!.consume(q, { prefetch: 1, leaseMs: t.lease }, held.onDelivery);
        await publishAll(producer!, q, [message("defer-body")]);
        await held.waitForCount(1, t.wait);
        const inbox = new Inbox();
        await consumer!.consume(q, { prefetch: 1, leaseMs: t.longLease }, inbox.onDelivery);
        await dying!.close();
        const [second] = await inbox.waitForCount(1, t.lease + t.wait);
        expect(second!.deliveryCount).toBeGreaterThan(1);
        const deferredAt = performance.now();
        await second!.delivery.defer(t.delay);
        const [, third] = await inbox.waitForCount(2, t.delay + t.wait);
        expect(third!.body).toBe("defer-body");
        expect(third!.deliveryCount).toBe(1);
        expect(third!.at - deferredAt).toBeGreaterThanOrEqual(t.delay - t.slack);
        await third!.delivery.ack();
        await expectCounts(producer!, q, EMPTY, t.wait);
      },
      t.testTimeout,
    );

    it(
      "deadLetter(record) moves the message to the dead letters, listed with its body, reason, error and time",
      async () => {
        const s = useScope(options);
        const q = s.queue("dead");
        const [producer, consumer] = await s.brokers(2);
        const inbox = new Inbox();
        await consumer!.consume(q, { prefetch: 1, leaseMs: t.longLease }, inbox.onDelivery);
        await publishAll(producer!, q, [message("dead-original")]);
        const [got] = await inbox.waitForCount(1, t.wait);
        const record: DeadLetterRecord = {
          body: "dead-final-body ✝",
          reason: "max-attempts",
          error: { name: "Error", message: "boom", code: "E_BOOM" },
          failedAt: Date.now(),
        };
        await got!.delivery.deadLetter(record);
        await expectCounts(producer!, q, { ...EMPTY, dead: 1 }, t.wait);
        const listed = await producer!.listDeadLetters(q, { limit: 10 });
        expect(listed).toHaveLength(1);
        const { key, ...rest } = listed[0]!;
        expect(typeof key).toBe("string");
        expect(rest).toEqual(record);
        await quietWindow(t.quiet);
        expect(inbox.received).toHaveLength(1);
      },
      t.testTimeout,
    );

    it(
      "lists dead letters oldest first with limit and offset, and removes them by key",
      async () => {
        const s = useScope(options);
        const q = s.queue("deadlist");
        const [producer, consumer] = await s.brokers(2);
        const inbox = new Inbox();
        await consumer!.consume(q, { prefetch: 1, leaseMs: t.longLease }, inbox.onDelivery);
        const reasons = ["non-retryable", "unknown-job", "validation"] as const;
        for (const [i, reason] of reasons.entries()) {
          await publishAll(producer!, q, [message(`dl-${i}`)]);
          const got = (await inbox.waitForCount(i + 1, t.wait))[i]!;
          await got.delivery.deadLetter({ body: `dl-${i}`, reason, error: { name: "Error", message: `e${i}` }, failedAt: Date.now() + i });
        }
        await expectCounts(producer!, q, { ...EMPTY, dead: 3 }, t.wait);
        const all = await producer!.listDeadLetters(q, { limit: 10 });
        expect(all.map((d) => d.body)).toEqual(["dl-0", "dl-1", "dl-2"]);
        expect(all.map((d) => d.reason)).toEqual([...reasons]);
        expect(new Set(all.map((d) => d.key)).size).toBe(3);
        const page = await producer!.listDeadLetters(q, { limit: 1, offset: 1 });
        expect(page.map((d) => d.body)).toEqual(["dl-1"]);
        expect(await producer!.removeDeadLetters(q, [all[0]!.key, all[2]!.key, "no-such-key"])).toBe(2);
        expect((await producer!.listDeadLetters(q, { limit: 10 })).map((d) => d.body)).toEqual(["dl-1"]);
        expect(await producer!.removeDeadLetters(q, [all[0]!.key])).toBe(0);
        await expectCounts(producer!, q, { ...EMPTY, dead: 1 }, t.wait);
      },
      t.testTimeout,
    );
  });
}

/** Delayed publish: held until its delay passed, without holding back ready messages. */
export function transportDelays(options: ConformanceOptions): void {
  group(options, "transport: delayed publish", ({ caps, t }) => {
    describe.skipIf(!(caps.maxDelayMs > 0))("delayed publish [needs capability: maxDelayMs > 0]", () => {
      it(
        "does not deliver a delayed message before delayMs, and delivers it soon after",
        async () => {
          const s = useScope(options);
          const q = s.queue("delay");
          const [producer, consumer] = await s.brokers(2);
          const inbox = new Inbox({ autoAck: true });
          await consumer!.consume(q, { prefetch: 5, leaseMs: t.longLease }, inbox.onDelivery);
          const publishedAt = performance.now();
          await publishAll(producer!, q, [message("delayed", { delayMs: t.delay })]);
          const [got] = await inbox.waitForCount(1, t.delay + t.wait);
          expect(got!.body).toBe("delayed");
          expect(got!.at - publishedAt).toBeGreaterThanOrEqual(t.delay - t.slack);
          expect(got!.at - publishedAt).toBeLessThan(t.delay + t.wait);
        },
        t.testTimeout,
      );

      it(
        "delivers ready messages while a delayed one is still held",
        async () => {
          const s = useScope(options);
          const q = s.queue("delaymix");
          const [producer, consumer] = await s.brokers(2);
          const inbox = new Inbox({ autoAck: true });
          await consumer!.consume(q, { prefetch: 5, leaseMs: t.longLease }, inbox.onDelivery);
          const publishedAt = performance.now();
          await publishAll(producer!, q, [message("later", { delayMs: t.delay }), message("now")]);
          const [first] = await inbox.waitForCount(1, t.wait);
          expect(first!.body).toBe("now");
          const [, second] = await inbox.waitForCount(2, t.delay + t.wait);
          expect(second!.body).toBe("later");
          expect(second!.at - publishedAt).toBeGreaterThanOrEqual(t.delay - t.slack);
        },
        t.testTimeout,
      );
    });
  });
}

/** Priority order under a backlog, on brokers that order by priority natively. */
export function transportPriority(options: ConformanceOptions): void {
  group(options, "transport: priority", ({ caps, t }) => {
    describe.skipIf(caps.priority !== "native")("priority order [needs capability: priority=native]", () => {
      it(
        "delivers a backlog highest priority first",
        async () => {
          const s = useScope(options);
          const q = s.queue("prio");
          const [producer, consumer] = await s.brokers(2);
          const levels: PriorityLevel[] = [1, 0, 2, 4, 3, 1, 4, 0, 2, 3];
          await publishAll(
            producer!,
            q,
            levels.map((level, i) => message(`p${level}-${i}`, { priority: level })),
          );
          await expectCounts(producer!, q, { ...EMPTY, waiting: levels.length }, t.wait);
          const inbox = new Inbox();
          // Prefetch 1 and settle one at a time, so each delivery is the broker's choice among the whole backlog.
          await consumer!.consume(q, { prefetch: 1, leaseMs: t.longLease }, (delivery) => {
            inbox.onDelivery(delivery);
            setImmediate(() => {
              delivery.ack().catch((error: unknown) => inbox.settleErrors.push(error));
            });
          });
          await inbox.waitForCount(levels.length, t.wait);
          const seen = inbox.bodies().map((b) => Number(b.slice(1, 2)));
          expect(seen).toEqual([...levels].sort((a, b) => b - a));
          expect(inbox.settleErrors).toEqual([]);
        },
        t.testTimeout,
      );
    });
  });
}

/** Prefetch: a consumer never holds more unsettled deliveries than its prefetch. */
export function transportPrefetch(options: ConformanceOptions): void {
  group(options, "transport: prefetch limit", ({ t }) => {
    it(
      "never hands a consumer more than prefetch unsettled deliveries, and refills as they settle",
      async () => {
        const s = useScope(options);
        const q = s.queue("prefetch");
        const [producer, consumer] = await s.brokers(2);
        const prefetch = 3;
        const n = 12;
        await publishAll(
          producer!,
          q,
          Array.from({ length: n }, (_, i) => message(`pf-${i}`)),
        );
        const inbox = new Inbox();
        let unsettled = 0;
        let maxUnsettled = 0;
        await consumer!.consume(q, { prefetch, leaseMs: t.longLease }, (delivery) => {
          unsettled++;
          maxUnsettled = Math.max(maxUnsettled, unsettled);
          inbox.onDelivery(delivery);
        });
        await inbox.waitForCount(prefetch, t.wait);
        await quietWindow(t.quiet);
        expect(inbox.received).toHaveLength(prefetch);
        let settled = 0;
        while (settled < n) {
          await inbox.waitForCount(settled + 1, t.wait);
          const next = inbox.received[settled]!;
          unsettled--;
          await next.delivery.ack();
          settled++;
        }
        expect(inbox.received).toHaveLength(n);
        expect(maxUnsettled).toBe(prefetch);
        expect(new Set(inbox.bodies()).size).toBe(n);
        await expectCounts(producer!, q, EMPTY, t.wait);
      },
      t.testTimeout,
    );
  });
}

/** Queue isolation: a queue's messages never reach another queue's consumers, even one whose name extends it. */
export function transportIsolation(options: ConformanceOptions): void {
  group(options, "transport: queue isolation", ({ t }) => {
    it(
      "keeps messages, counts and purges of queues apart, even when one name extends the other",
      async () => {
        const s = useScope(options);
        const a = s.queue("iso");
        const b = s.adopt(`${a}-b`);
        const c = s.adopt(`${a}b`);
        const [producer, consumer] = await s.brokers(2);
        const inboxA = new Inbox({ autoAck: true });
        await consumer!.consume(a, { prefetch: 10, leaseMs: t.longLease }, inboxA.onDelivery);
        await publishAll(producer!, a, [message("for-a-1"), message("for-a-2")]);
        await publishAll(producer!, b, [message("for-b-1")]);
        await publishAll(producer!, c, [message("for-c-1"), message("for-c-2"), message("for-c-3")]);
        await inboxA.waitForCount(2, t.wait);
        await expectCounts(producer!, b, { ...EMPTY, waiting: 1 }, t.wait);
        await expectCounts(producer!, c, { ...EMPTY, waiting: 3 }, t.wait);
        await quietWindow(t.quiet);
        expect([...inboxA.bodies()].sort()).toEqual(["for-a-1", "for-a-2"]);
        await producer!.purge(c);
        await expectCounts(producer!, c, EMPTY, t.wait);
        await expectCounts(producer!, b, { ...EMPTY, waiting: 1 }, t.wait);
        const inboxB = new Inbox({ autoAck: true });
        await consumer!.consume(b, { prefetch: 10, leaseMs: t.longLease }, inboxB.onDelivery);
        await inboxB.waitForCount(1, t.wait);
        expect(inboxB.bodies()).toEqual(["for-b-1"]);
        await quietWindow(t.quiet);
        expect(inboxA.received).toHaveLength(2);
      },
      t.testTimeout,
    );
  });
}

/** Close: graceful and idempotent; a closed instance rejects new work and receives nothing more; stop() ends a consumer. */
export function transportClose(options: ConformanceOptions): void {
  group(options, "transport: close", ({ t }) => {
    it(
      "close resolves and is idempotent, sequentially and concurrently",
      async () => {
        const s = useScope(options);
        const q = s.queue("close");
        const broker = await s.broker();
        await broker.consume(q, { prefetch: 1, leaseMs: t.longLease }, () => {});
        await expect(Promise.all([broker.close(), broker.close()])).resolves.toBeDefined();
        await expect(broker.close()).resolves.toBeUndefined();
      },
      t.testTimeout,
    );

    it(
      "rejects publish and consume after close with BrokerClosedError",
      async () => {
        const s = useScope(options);
        const q = s.queue("closed");
        const [broker, observer] = await s.brokers(2);
        await broker!.close();
        expectJobsError(await rejectionOf(broker!.publish(q, [message("after-close")])), ["broker-closed"]);
        expectJobsError(await rejectionOf(broker!.consume(q, { prefetch: 1, leaseMs: t.longLease }, () => {})), ["broker-closed"]);
        await expectCounts(observer!, q, EMPTY, t.wait);
      },
      t.testTimeout,
    );

    it(
      "a closed instance's consumer receives nothing more; another consumer gets the messages",
      async () => {
        const s = useScope(options);
        const q = s.queue("closedcons");
        const [producer, closing, other] = await s.brokers(3);
        const closedInbox = new Inbox({ autoAck: true });
        await closing!.consume(q, { prefetch: 10, leaseMs: t.longLease }, closedInbox.onDelivery);
        await closing!.close();
        await publishAll(producer!, q, [message("after-1"), message("after-2")]);
        await quietWindow(t.quiet);
        expect(closedInbox.received).toHaveLength(0);
        const inbox = new Inbox({ autoAck: true });
        await other!.consume(q, { prefetch: 10, leaseMs: t.longLease }, inbox.onDelivery);
        await inbox.waitForCount(2, t.wait);
        expect(closedInbox.received).toHaveLength(0);
      },
      t.testTimeout,
    );

    it(
      "Subscription.stop() ends new deliveries, while deliveries already held can still be acked",
      async () => {
        const s = useScope(options);
        const q = s.queue("stop");
        const [producer, consumer] = await s.brokers(2);
        const inbox = new Inbox();
        const sub = await consumer!.consume(q, { prefetch: 1, leaseMs: t.longLease }, inbox.onDelivery);
        await publishAll(producer!, q, [message("held")]);
        const [held] = await inbox.waitForCount(1, t.wait);
        await sub.stop();
        await publishAll(producer!, q, [message("not-for-stopped")]);
        await held!.delivery.ack();
        await quietWindow(t.quiet);
        expect(inbox.bodies()).toEqual(["held"]);
        await expectCounts(producer!, q, { ...EMPTY, waiting: 1 }, t.wait);
      },
      t.testTimeout,
    );
  });
}

/** Dedupe by id within the broker's window, for brokers that have one. */
export function transportDedupe(options: ConformanceOptions): void {
  group(options, "transport: dedupe", ({ caps, t }) => {
    describe.skipIf(!(caps.dedupeWindowMs > 0))("dedupe [needs capability: dedupeWindowMs > 0]", () => {
      it(
        "drops a second publish of the same id with dedupe: true (duplicate: true) and delivers once",
        async () => {
          const s = useScope(options);
          const q = s.queue("dedupe");
          const [producer, consumer] = await s.brokers(2);
          const id = `dedupe-${randomUUID()}`;
          expect(await producer!.publish(q, [message("first", { id })])).toEqual([{ ok: true, duplicate: false }]);
          expect(await producer!.publish(q, [message("second", { id })])).toEqual([{ ok: true, duplicate: true }]);
          const inbox = new Inbox({ autoAck: true });
          await consumer!.consume(q, { prefetch: 10, leaseMs: t.longLease }, inbox.onDelivery);
          await inbox.waitForCount(1, t.wait);
          await quietWindow(t.quiet);
          expect(inbox.bodies()).toEqual(["first"]);
        },
        t.testTimeout,
      );

      it(
        "does not drop a republish of the same id with dedupe: false (as retries and requeues do)",
        async () => {
          const s = useScope(options);
          const q = s.queue("nodedupe");
          const [producer, consumer] = await s.brokers(2);
          const id = `redo-${randomUUID()}`;
          await publishAll(producer!, q, [message("original", { id })]);
          await publishAll(producer!, q, [message("republished", { id, dedupe: false })]);
          const inbox = new Inbox({ autoAck: true });
          await consumer!.consume(q, { prefetch: 10, leaseMs: t.longLease }, inbox.onDelivery);
          await inbox.waitForCount(2, t.wait);
          expect([...inbox.bodies()].sort()).toEqual(["original", "republished"]);
        },
        t.testTimeout,
      );
    });
  });
}

/** Inspection: counts follow messages through waiting, delayed, active and dead; purge clears all but in-flight. */
export function transportInspection(options: ConformanceOptions): void {
  group(options, "transport: inspection and purge", ({ caps, t }) => {
    // Brokers that cannot see other connections' unsettled deliveries are not held to `active` counts.
    const inexact = { ignoreActive: caps.exactActiveCount === false };
    it(
      "counts waiting, active and dead exactly as messages move",
      async () => {
        const s = useScope(options);
        const q = s.queue("counts");
        const [producer, consumer] = await s.brokers(2);
        await expectCounts(producer!, q, EMPTY, t.wait);
        await publishAll(producer!, q, [message("c-1"), message("c-2"), message("c-3")]);
        await expectCounts(producer!, q, { waiting: 3, delayed: 0, active: 0, dead: 0 }, t.wait);
        const inbox = new Inbox();
        await consumer!.consume(q, { prefetch: 2, leaseMs: t.longLease }, inbox.onDelivery);
        const [one, two] = await inbox.waitForCount(2, t.wait);
        await expectCounts(producer!, q, { waiting: 1, delayed: 0, active: 2, dead: 0 }, t.wait, inexact);
        await one!.delivery.deadLetter({
          body: one!.body,
          reason: "non-retryable",
          error: { name: "Error", message: "x" },
          failedAt: Date.now(),
        });
        const [, , three] = await inbox.waitForCount(3, t.wait);
        await expectCounts(producer!, q, { waiting: 0, delayed: 0, active: 2, dead: 1 }, t.wait, inexact);
        await two!.delivery.ack();
        await three!.delivery.ack();
        await expectCounts(producer!, q, { waiting: 0, delayed: 0, active: 0, dead: 1 }, t.wait);
      },
      t.testTimeout,
    );

    describe.skipIf(caps.maxDelayMs < t.ms(10_000))("delayed count [needs capability: maxDelayMs ≥ 10 s]", () => {
      it(
        "counts delayed publishes and delayed retries as delayed, not waiting",
        async () => {
          const s = useScope(options);
          const q = s.queue("delayedcount");
          const [producer, consumer] = await s.brokers(2);
          const later = t.ms(10_000);
          const first = message("now");
          await publishAll(producer!, q, [first, message("later", { delayMs: later })]);
          await expectCounts(producer!, q, { waiting: 1, delayed: 1, active: 0, dead: 0 }, t.wait);
          const inbox = new Inbox();
          await consumer!.consume(q, { prefetch: 5, leaseMs: t.longLease }, inbox.onDelivery);
          const [now] = await inbox.waitForCount(1, t.wait);
          expect(now!.body).toBe("now");
          await expectCounts(producer!, q, { waiting: 0, delayed: 1, active: 1, dead: 0 }, t.wait, inexact);
          await now!.delivery.retry({ ...first, body: "now-retried", delayMs: later, dedupe: false });
          await expectCounts(producer!, q, { waiting: 0, delayed: 2, active: 0, dead: 0 }, t.wait);
          expect(inbox.received).toHaveLength(1);
        },
        t.testTimeout,
      );
    });

    describe.skipIf(caps.exactPurge === false)("exact purge [needs capability: exactPurge]", () => {
      it(
        "purge removes waiting, delayed and dead messages and leaves deliveries in flight settleable",
        async () => {
          const s = useScope(options);
          const q = s.queue("purge");
          const [producer, consumer] = await s.brokers(2);
          const inbox = new Inbox();
          const sub = await consumer!.consume(q, { prefetch: 2, leaseMs: t.longLease }, inbox.onDelivery);
          await publishAll(producer!, q, [message("in-flight"), message("to-dead")]);
          const [first, second] = await inbox.waitForCount(2, t.wait);
          await sub.stop();
          const dead = first!.body === "to-dead" ? first! : second!;
          const flying = first!.body === "to-dead" ? second! : first!;
          await dead.delivery.deadLetter({
            body: dead.body,
            reason: "validation",
            error: { name: "E", message: "m" },
            failedAt: Date.now(),
          });
          await publishAll(producer!, q, [message("w-1"), message("w-2"), message("d-1", { delayMs: t.delay })]);
          await producer!.purge(q);
          await expectCounts(producer!, q, { waiting: 0, delayed: 0, active: 1, dead: 0 }, t.wait, inexact);
          expect(await producer!.listDeadLetters(q, { limit: 10 })).toEqual([]);
          await flying.delivery.ack();
          await expectCounts(producer!, q, EMPTY, t.wait);
          const after = new Inbox({ autoAck: true });
          await consumer!.consume(q, { prefetch: 10, leaseMs: t.longLease }, after.onDelivery);
          // Long enough for the purged delayed message to have come due.
          await quietWindow(t.delay + t.quiet);
          expect(after.received).toHaveLength(0);
        },
        t.testTimeout,
      );
    });

    describe.skipIf(caps.exactPurge !== false)("eventual purge [capability: exactPurge = false]", () => {
      it(
        "purge removes waiting and dead messages at once",
        async () => {
          const s = useScope(options);
          const q = s.queue("purgesoon");
          const [producer, consumer] = await s.brokers(2);
          const inbox = new Inbox();
          const sub = await consumer!.consume(q, { prefetch: 1, leaseMs: t.longLease }, inbox.onDelivery);
          await publishAll(producer!, q, [message("to-dead")]);
          const [dead] = await inbox.waitForCount(1, t.wait);
          await sub.stop();
          await dead!.delivery.deadLetter({
            body: dead!.body,
            reason: "validation",
            error: { name: "E", message: "m" },
            failedAt: Date.now(),
          });
          await publishAll(producer!, q, [message("w-1"), message("w-2")]);
          await expectCounts(producer!, q, { ...EMPTY, waiting: 2, dead: 1 }, t.wait);
          await producer!.purge(q);
          await expectCounts(producer!, q, EMPTY, t.wait);
          expect(await producer!.listDeadLetters(q, { limit: 10 })).toEqual([]);
        },
        t.testTimeout,
      );
    });
  });
}

/** Payload limit: exactly `maxPayloadBytes` (UTF-8) is accepted intact, one byte more is refused and not stored. */
export function transportPayloadLimit(options: ConformanceOptions): void {
  group(options, "transport: payload limit", ({ caps, t }) => {
    describe.skipIf(caps.maxPayloadBytes > 8 * MIB)("payload limit [needs capability: maxPayloadBytes ≤ 8 MiB]", () => {
      const limit = caps.maxPayloadBytes;
      // Two-byte characters, so a broker counting characters instead of bytes fails both cases.
      const sized = (bytes: number): string => "é".repeat(Math.floor(bytes / 2)) + "x".repeat(bytes % 2);

      it(
        "accepts a body of exactly maxPayloadBytes UTF-8 bytes and delivers it intact",
        async () => {
          const s = useScope(options);
          const q = s.queue("atlimit");
          const [producer, consumer] = await s.brokers(2);
          const body = sized(limit);
          expect(Buffer.byteLength(body, "utf8")).toBe(limit);
          await publishAll(producer!, q, [message(body)]);
          const inbox = new Inbox({ autoAck: true });
          await consumer!.consume(q, { prefetch: 1, leaseMs: t.longLease }, inbox.onDelivery);
          const [got] = await inbox.waitForCount(1, t.wait);
          expect(got!.body === body).toBe(true);
        },
        t.testTimeout,
      );

      it(
        "refuses a body of maxPayloadBytes + 1 bytes with PayloadTooLargeError and stores nothing",
        async () => {
          const s = useScope(options);
          const q = s.queue("overlimit");
          const [producer, observer] = await s.brokers(2);
          const body = sized(limit + 1);
          expect(body.length).toBeLessThan(limit);
          let error: unknown;
          try {
            const [outcome] = await producer!.publish(q, [message(body)]);
            expect(outcome?.ok).toBe(false);
            if (outcome !== undefined && !outcome.ok) error = outcome.error;
          } catch (thrown) {
            error = thrown;
          }
          expectJobsError(error, ["payload-too-large"]);
          await expectCounts(observer!, q, EMPTY, t.wait);
          // The instance stays usable after refusing a message.
          await publishAll(producer!, q, [message("small")]);
          await expectCounts(observer!, q, { ...EMPTY, waiting: 1 }, t.wait);
        },
        t.testTimeout,
      );
    });
  });
}
