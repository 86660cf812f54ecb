/**
 * Transport cases on what a publish can ask for: a delay, a priority, dedupe by id, and a body up
 * to the broker's payload limit. Each group runs only on brokers whose capabilities offer it.
 */
import { randomUUID } from "node:crypto";
import type { PriorityLevel } from "@jobs/core/adapter";
import { describe, expect, it } from "vitest";
import { group } from "../internal/fixture.js";
import { EMPTY, expectJobsError, message, quietWindow } from "../internal/harness.js";
import type { ConformanceOptions } from "../options.js";

const MIB = 1_048_576;

/** Delayed publish: held until its delay passed, without holding back ready messages. */
export function transportDelays(options: ConformanceOptions): void {
  group(options, "transport: delayed publish", ({ caps, t, transportCase }) => {
    describe.skipIf(!(caps.maxDelayMs > 0))("delayed publish [needs capability: maxDelayMs > 0]", () => {
      it(
        "does not deliver a delayed message before delayMs, and delivers it soon after",
        async () => {
          const f = await transportCase("delay");
          const inbox = await f.inbox({ prefetch: 5, autoAck: true });
          const publishedAt = performance.now();
          await f.publish(message("delayed", { delayMs: t.delay }));
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
          const f = await transportCase("delaymix");
          const inbox = await f.inbox({ prefetch: 5, autoAck: true });
          const publishedAt = performance.now();
          await f.publish(message("later", { delayMs: t.delay }), "now");
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
  group(options, "transport: priority", ({ caps, t, transportCase }) => {
    describe.skipIf(caps.priority !== "native")("priority order [needs capability: priority=native]", () => {
      it(
        "delivers a backlog highest priority first",
        async () => {
          const f = await transportCase("prio");
          const levels: PriorityLevel[] = [1, 0, 2, 4, 3, 1, 4, 0, 2, 3];
          await f.publish(...levels.map((level, i) => message(`p${level}-${i}`, { priority: level })));
          await f.expectCounts({ ...EMPTY, waiting: levels.length });
          // Prefetch 1 and settle one at a time, so each delivery is the broker's choice among the whole backlog.
          const inbox = await f.inbox({ prefetch: 1, autoAck: "next-turn" });
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

/** Dedupe by id within the broker's window, for brokers that have one. */
export function transportDedupe(options: ConformanceOptions): void {
  group(options, "transport: dedupe", ({ caps, t, transportCase }) => {
    describe.skipIf(!(caps.dedupeWindowMs > 0))("dedupe [needs capability: dedupeWindowMs > 0]", () => {
      it(
        "drops a second publish of the same id with dedupe: true (duplicate: true) and delivers once",
        async () => {
          const f = await transportCase("dedupe");
          const id = `dedupe-${randomUUID()}`;
          expect(await f.producer.publish(f.q, [message("first", { id })])).toEqual([{ ok: true, duplicate: false }]);
          expect(await f.producer.publish(f.q, [message("second", { id })])).toEqual([{ ok: true, duplicate: true }]);
          const inbox = await f.inbox({ prefetch: 10, autoAck: true });
          await inbox.waitForCount(1, t.wait);
          await quietWindow(t.quiet);
          expect(inbox.bodies()).toEqual(["first"]);
        },
        t.testTimeout,
      );

      it(
        "does not drop a republish of the same id with dedupe: false (as retries and requeues do)",
        async () => {
          const f = await transportCase("nodedupe");
          const id = `redo-${randomUUID()}`;
          await f.publish(message("original", { id }));
          await f.publish(message("republished", { id, dedupe: false }));
          const inbox = await f.inbox({ prefetch: 10, autoAck: true });
          await inbox.waitForCount(2, t.wait);
          expect([...inbox.bodies()].sort()).toEqual(["original", "republished"]);
        },
        t.testTimeout,
      );
    });
  });
}

/** Payload limit: exactly `maxPayloadBytes` (UTF-8) is accepted intact, one byte more is refused and not stored. */
export function transportPayloadLimit(options: ConformanceOptions): void {
  group(options, "transport: payload limit", ({ caps, t, transportCase }) => {
    describe.skipIf(caps.maxPayloadBytes > 8 * MIB)("payload limit [needs capability: maxPayloadBytes ≤ 8 MiB]", () => {
      const limit = caps.maxPayloadBytes;
      // Two-byte characters, so a broker counting characters instead of bytes fails both cases.
      const sized = (bytes: number): string => "é".repeat(Math.floor(bytes / 2)) + "x".repeat(bytes % 2);

      it(
        "accepts a body of exactly maxPayloadBytes UTF-8 bytes and delivers it intact",
        async () => {
          const f = await transportCase("atlimit");
          const body = sized(limit);
          expect(Buffer.byteLength(body, "utf8")).toBe(limit);
          await f.publish(body);
          const inbox = await f.inbox({ prefetch: 1, autoAck: true });
          const [got] = await inbox.waitForCount(1, t.wait);
          expect(got!.body === body).toBe(true);
        },
        t.testTimeout,
      );

      it(
        "refuses a body of maxPayloadBytes + 1 bytes with PayloadTooLargeError and stores nothing",
        async () => {
          const f = await transportCase("overlimit");
          const [producer, observer] = f.brokers;
          const body = sized(limit + 1);
          expect(body.length).toBeLessThan(limit);
          let error: unknown;
          try {
            const [outcome] = await producer.publish(f.q, [message(body)]);
            expect(outcome?.ok).toBe(false);
            if (outcome !== undefined && !outcome.ok) error = outcome.error;
          } catch (thrown) {
            error = thrown;
          }
          expectJobsError(error, ["payload-too-large"]);
          // One message a user can read: the limit named, the library's prefix once.
          expect((error as Error).message).toContain(String(limit));
          expect((error as Error).message.match(/\[jobs\]/g)?.length ?? 0).toBeLessThanOrEqual(1);
          await f.expectCounts(EMPTY, { source: observer });
          // The instance stays usable after refusing a message.
          await f.publish("small");
          await f.expectCounts({ ...EMPTY, waiting: 1 }, { source: observer });
        },
        t.testTimeout,
      );
    });
  });
}
