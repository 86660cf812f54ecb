/**
 * Transport cases on inspection: counts follow messages through waiting, delayed, active and dead;
 * purge clears everything but deliveries in flight.
 */
import type { DeadLetterRecord } from "@jobs/core/adapter";
import { describe, expect, it } from "vitest";
import { group } from "../internal/fixture.js";
import { EMPTY, message, quietWindow, type Received } from "../internal/harness.js";
import type { ConformanceOptions } from "../options.js";

/** Dead-letters `received` with a record of `reason` and a placeholder error. */
function deadLetter(received: Received, reason: DeadLetterRecord["reason"], error: DeadLetterRecord["error"]): Promise<void> {
  return received.delivery.deadLetter({ body: received.body, reason, error, failedAt: Date.now() });
}

/** Inspection: counts follow messages through waiting, delayed, active and dead; purge clears all but in-flight. */
export function transportInspection(options: ConformanceOptions): void {
  group(options, "transport: inspection and purge", ({ caps, t, transportCase }) => {
    // Brokers that cannot see other connections' unsettled deliveries are not held to `active` counts.
    const inexact = { ignoreActive: caps.exactActiveCount === false };
    it(
      "counts waiting, active and dead exactly as messages move",
      async () => {
        const f = await transportCase("counts");
        await f.expectCounts(EMPTY);
        await f.publish("c-1", "c-2", "c-3");
        await f.expectCounts({ waiting: 3, delayed: 0, active: 0, dead: 0 });
        const inbox = await f.inbox({ prefetch: 2 });
        const [one, two] = await inbox.waitForCount(2, t.wait);
        await f.expectCounts({ waiting: 1, delayed: 0, active: 2, dead: 0 }, inexact);
        await deadLetter(one!, "non-retryable", { name: "Error", message: "x" });
        const [, , three] = await inbox.waitForCount(3, t.wait);
        await f.expectCounts({ waiting: 0, delayed: 0, active: 2, dead: 1 }, inexact);
        await two!.delivery.ack();
        await three!.delivery.ack();
        await f.expectCounts({ waiting: 0, delayed: 0, active: 0, dead: 1 });
      },
      t.testTimeout,
    );

    describe.skipIf(caps.maxDelayMs < t.ms(10_000))("delayed count [needs capability: maxDelayMs ≥ 10 s]", () => {
      it(
        "counts delayed publishes and delayed retries as delayed, not waiting",
        async () => {
          const f = await transportCase("delayedcount");
          const later = t.ms(10_000);
          const first = message("now");
          await f.publish(first, message("later", { delayMs: later }));
          await f.expectCounts({ waiting: 1, delayed: 1, active: 0, dead: 0 });
          const inbox = await f.inbox({ prefetch: 5 });
          const [now] = await inbox.waitForCount(1, t.wait);
          expect(now!.body).toBe("now");
          await f.expectCounts({ waiting: 0, delayed: 1, active: 1, dead: 0 }, inexact);
          await now!.delivery.retry({ ...first, body: "now-retried", delayMs: later, dedupe: false });
          await f.expectCounts({ waiting: 0, delayed: 2, active: 0, dead: 0 });
          expect(inbox.received).toHaveLength(1);
        },
        t.testTimeout,
      );
    });

    describe.skipIf(caps.exactPurge === false)("exact purge [needs capability: exactPurge]", () => {
      it(
        "purge removes waiting, delayed and dead messages and leaves deliveries in flight settleable",
        async () => {
          const f = await transportCase("purge");
          const inbox = await f.inbox({ prefetch: 2 });
          await f.publish("in-flight", "to-dead");
          const [first, second] = await inbox.waitForCount(2, t.wait);
          await inbox.stop();
          const dead = first!.body === "to-dead" ? first! : second!;
          const flying = first!.body === "to-dead" ? second! : first!;
          await deadLetter(dead, "validation", { name: "E", message: "m" });
          await f.publish("w-1", "w-2", message("d-1", { delayMs: t.delay }));
          await f.producer.purge(f.q);
          await f.expectCounts({ waiting: 0, delayed: 0, active: 1, dead: 0 }, inexact);
          expect(await f.producer.listDeadLetters(f.q, { limit: 10 })).toEqual([]);
          await flying.delivery.ack();
          await f.expectCounts(EMPTY);
          const after = await f.inbox({ prefetch: 10, autoAck: true });
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
          const f = await transportCase("purgesoon");
          const inbox = await f.inbox({ prefetch: 1 });
          await f.publish("to-dead");
          const [dead] = await inbox.waitForCount(1, t.wait);
          await inbox.stop();
          await deadLetter(dead!, "validation", { name: "E", message: "m" });
          await f.publish("w-1", "w-2");
          await f.expectCounts({ ...EMPTY, waiting: 2, dead: 1 });
          await f.producer.purge(f.q);
          await f.expectCounts(EMPTY);
          expect(await f.producer.listDeadLetters(f.q, { limit: 10 })).toEqual([]);
        },
        t.testTimeout,
      );
    });
  });
}
