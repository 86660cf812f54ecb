/**
 * Transport cases on delivery itself: bodies arrive once and byte for byte, competing consumers
 * share a queue without loss or duplicates, prefetch bounds what a consumer holds, and queues
 * stay apart.
 */
import { waitFor } from "@jobs/core/testing";
import { expect, it } from "vitest";
import { group } from "../internal/fixture.js";
import { EMPTY, Inbox, message, publishAll, quietWindow } from "../internal/harness.js";
import type { ConformanceOptions } from "../options.js";

/** Round trip and payload fidelity: bodies arrive once, byte for byte, batches resolve one outcome per message. */
export function transportRoundTrip(options: ConformanceOptions): void {
  group(options, "transport: round trip and payload fidelity", ({ caps, t, transportCase }) => {
    it(
      "delivers a published message once, with its exact body and deliveryCount 1",
      async () => {
        const f = await transportCase("rt");
        const inbox = await f.inbox({ prefetch: 10 });
        const body = JSON.stringify({ v: 1, hello: "world", n: 42 });
        await f.publish(body);
        const [received] = await inbox.waitForCount(1, t.wait);
        expect(received!.body).toBe(body);
        expect(received!.deliveryCount).toBe(1);
        await received!.delivery.ack();
        await f.expectCounts(EMPTY);
        await quietWindow(t.quiet);
        expect(inbox.received).toHaveLength(1);
      },
      t.testTimeout,
    );

    it(
      "keeps unicode, whitespace and escapes byte for byte",
      async () => {
        const f = await transportCase("fidelity");
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
        const inbox = await f.inbox({ prefetch: 10, autoAck: true });
        await f.publish(...bodies);
        await inbox.waitForCount(bodies.length, t.wait);
        expect([...inbox.bodies()].sort()).toEqual([...bodies].sort());
        for (const body of inbox.bodies()) {
          const sent = bodies.find((b) => b === body);
          expect(Buffer.from(body, "utf8").equals(Buffer.from(sent!, "utf8"))).toBe(true);
        }
        await f.expectCounts(EMPTY);
        expect(inbox.settleErrors).toEqual([]);
      },
      t.testTimeout,
    );

    it(
      "keeps a large multi-byte body intact",
      async () => {
        const f = await transportCase("large");
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
        const inbox = await f.inbox({ prefetch: 1, autoAck: true });
        await f.publish(body);
        const [received] = await inbox.waitForCount(1, t.wait);
        expect(received!.body.length).toBe(body.length);
        expect(Buffer.from(received!.body, "utf8").equals(Buffer.from(body, "utf8"))).toBe(true);
      },
      t.testTimeout,
    );

    it(
      "resolves one outcome per message of a batch, in order, and delivers every one",
      async () => {
        const f = await transportCase("batch");
        const bodies = Array.from({ length: 25 }, (_, i) => `batch-${i}`);
        const outcomes = await f.producer.publish(
          f.q,
          bodies.map((b) => message(b)),
        );
        expect(outcomes).toHaveLength(bodies.length);
        for (const outcome of outcomes) expect(outcome).toEqual({ ok: true, duplicate: false });
        const inbox = await f.inbox({ prefetch: 10, autoAck: true });
        await inbox.waitForCount(bodies.length, t.wait);
        expect([...inbox.bodies()].sort()).toEqual([...bodies].sort());
        await f.expectCounts(EMPTY);
        expect(inbox.settleErrors).toEqual([]);
      },
      t.testTimeout,
    );
  });
}

/** No loss and no duplicates: N messages to K competing consumers on separate instances run N times in total. */
export function transportCompetingConsumers(options: ConformanceOptions): void {
  group(options, "transport: competing consumers", ({ t, transportCase }) => {
    it(
      "delivers each of N messages exactly once across K consumers on separate broker instances",
      async () => {
        const f = await transportCase("compete", { brokers: 1 });
        const n = 60;
        const k = 3;
        const inboxes: Inbox[] = [];
        for (let i = 0; i < k; i++) {
          // Settle asynchronously, as a real handler would.
          inboxes.push(await f.inbox({ broker: await f.broker(), prefetch: 5, autoAck: "next-turn" }));
        }
        const bodies = Array.from({ length: n }, (_, i) => `compete-${i}`);
        for (let i = 0; i < n; i += 10) await f.publish(...bodies.slice(i, i + 10));
        const total = (): number => inboxes.reduce((sum, inbox) => sum + inbox.received.length, 0);
        await waitFor(() => total() >= n, { timeout: t.wait, message: `expected ${n} deliveries` });
        await f.expectCounts(EMPTY);
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

/** Prefetch: a consumer never holds more unsettled deliveries than its prefetch. */
export function transportPrefetch(options: ConformanceOptions): void {
  group(options, "transport: prefetch limit", ({ t, transportCase }) => {
    it(
      "never hands a consumer more than prefetch unsettled deliveries, and refills as they settle",
      async () => {
        const f = await transportCase("prefetch");
        const prefetch = 3;
        const n = 12;
        await f.publish(...Array.from({ length: n }, (_, i) => `pf-${i}`));
        const inbox = new Inbox();
        let unsettled = 0;
        let maxUnsettled = 0;
        await f.consumer.consume(f.q, { prefetch, leaseMs: t.longLease }, (delivery) => {
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
        await f.expectCounts(EMPTY);
      },
      t.testTimeout,
    );
  });
}

/** Queue isolation: a queue's messages never reach another queue's consumers, even one whose name extends it. */
export function transportIsolation(options: ConformanceOptions): void {
  group(options, "transport: queue isolation", ({ t, transportCase }) => {
    it(
      "keeps messages, counts and purges of queues apart, even when one name extends the other",
      async () => {
        const f = await transportCase("iso");
        const a = f.q;
        const b = f.adopt(`${a}-b`);
        const c = f.adopt(`${a}b`);
        const inboxA = await f.inbox({ prefetch: 10, autoAck: true });
        await f.publish("for-a-1", "for-a-2");
        await publishAll(f.producer, b, [message("for-b-1")]);
        await publishAll(f.producer, c, [message("for-c-1"), message("for-c-2"), message("for-c-3")]);
        await inboxA.waitForCount(2, t.wait);
        await f.expectCounts({ ...EMPTY, waiting: 1 }, { queue: b });
        await f.expectCounts({ ...EMPTY, waiting: 3 }, { queue: c });
        await quietWindow(t.quiet);
        expect([...inboxA.bodies()].sort()).toEqual(["for-a-1", "for-a-2"]);
        await f.producer.purge(c);
        await f.expectCounts(EMPTY, { queue: c });
        await f.expectCounts({ ...EMPTY, waiting: 1 }, { queue: b });
        const inboxB = await f.inbox({ prefetch: 10, autoAck: true, queue: b });
        await inboxB.waitForCount(1, t.wait);
        expect(inboxB.bodies()).toEqual(["for-b-1"]);
        await quietWindow(t.quiet);
        expect(inboxA.received).toHaveLength(2);
      },
      t.testTimeout,
    );
  });
}
