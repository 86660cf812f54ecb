/**
 * Transport cases on settling a delivery other than by ack: retry (the next body, after its
 * delay), defer (the same body, deliveryCount reset) and dead letters (listed, paged, removable).
 */
import type { DeadLetterRecord } from "@jobs/core/adapter";
import { expect, it } from "vitest";
import { group } from "../internal/fixture.js";
import { EMPTY, message, quietWindow } from "../internal/harness.js";
import type { ConformanceOptions } from "../options.js";

/** Settling: retry (next body, after its delay), defer (same body, deliveryCount reset), dead letters (listed, removable). */
export function transportSettlement(options: ConformanceOptions): void {
  group(options, "transport: retry, defer and dead letters", ({ t, transportCase }) => {
    it(
      "retry(next) replaces the message: next body delivered with deliveryCount 1, not before its delay",
      async () => {
        const f = await transportCase("retry");
        const inbox = await f.inbox({ prefetch: 5 });
        const first = message("attempt-1");
        await f.publish(first);
        const [got] = await inbox.waitForCount(1, t.wait);
        const retriedAt = performance.now();
        await got!.delivery.retry({ id: first.id, body: "attempt-2", priority: 2, delayMs: t.delay, dedupe: false });
        const [, next] = await inbox.waitForCount(2, t.delay + t.wait);
        expect(next!.body).toBe("attempt-2");
        expect(next!.deliveryCount).toBe(1);
        expect(next!.at - retriedAt).toBeGreaterThanOrEqual(t.delay - t.slack);
        await next!.delivery.ack();
        await f.expectCounts(EMPTY);
        await quietWindow(t.quiet);
        expect(inbox.bodies()).toEqual(["attempt-1", "attempt-2"]);
      },
      t.testTimeout,
    );

    it(
      "defer(delayMs) hands the same body out again, not before the delay, with deliveryCount reset to 1",
      async () => {
        const f = await transportCase("defer", { brokers: 3 });
        const [, dying, consumer] = f.brokers;
        // First make the broker count a second delivery, so the reset is visible.
        const held = await f.inbox({ broker: dying, prefetch: 1, leaseMs: t.lease });
        await f.publish("defer-body");
        await held.waitForCount(1, t.wait);
        const inbox = await f.inbox({ broker: consumer, prefetch: 1 });
        await dying.close();
        const [second] = await inbox.waitForCount(1, t.lease + t.wait);
        expect(second!.deliveryCount).toBeGreaterThan(1);
        const deferredAt = performance.now();
        await second!.delivery.defer(t.delay);
        const [, third] = await inbox.waitForCount(2, t.delay + t.wait);
        expect(third!.body).toBe("defer-body");
        expect(third!.deliveryCount).toBe(1);
        expect(third!.at - deferredAt).toBeGreaterThanOrEqual(t.delay - t.slack);
        await third!.delivery.ack();
        await f.expectCounts(EMPTY);
      },
      t.testTimeout,
    );

    it(
      "deadLetter(record) moves the message to the dead letters, listed with its body, reason, error and time",
      async () => {
        const f = await transportCase("dead");
        const inbox = await f.inbox({ prefetch: 1 });
        await f.publish("dead-original");
        const [got] = await inbox.waitForCount(1, t.wait);
        const record: DeadLetterRecord = {
          body: "dead-final-body ✝",
          reason: "max-attempts",
          error: { name: "Error", message: "boom", code: "E_BOOM" },
          failedAt: Date.now(),
        };
        await got!.delivery.deadLetter(record);
        await f.expectCounts({ ...EMPTY, dead: 1 });
        const listed = await f.producer.listDeadLetters(f.q, { limit: 10 });
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
        const f = await transportCase("deadlist");
        const { producer, q } = f;
        const inbox = await f.inbox({ prefetch: 1 });
        const reasons = ["non-retryable", "unknown-job", "validation"] as const;
        for (const [i, reason] of reasons.entries()) {
          await f.publish(`dl-${i}`);
          const got = (await inbox.waitForCount(i + 1, t.wait))[i]!;
          await got.delivery.deadLetter({ body: `dl-${i}`, reason, error: { name: "Error", message: `e${i}` }, failedAt: Date.now() + i });
        }
        await f.expectCounts({ ...EMPTY, dead: 3 });
        const all = await producer.listDeadLetters(q, { limit: 10 });
        expect(all.map((d) => d.body)).toEqual(["dl-0", "dl-1", "dl-2"]);
        expect(all.map((d) => d.reason)).toEqual([...reasons]);
        expect(new Set(all.map((d) => d.key)).size).toBe(3);
        const page = await producer.listDeadLetters(q, { limit: 1, offset: 1 });
        expect(page.map((d) => d.body)).toEqual(["dl-1"]);
        expect(await producer.removeDeadLetters(q, [all[0]!.key, all[2]!.key, "no-such-key"])).toBe(2);
        expect((await producer.listDeadLetters(q, { limit: 10 })).map((d) => d.body)).toEqual(["dl-1"]);
        expect(await producer.removeDeadLetters(q, [all[0]!.key])).toBe(0);
        await f.expectCounts({ ...EMPTY, dead: 1 });
      },
      t.testTimeout,
    );
  });
}
