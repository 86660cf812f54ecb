/**
 * Transport cases on leases: deliveries left unsettled by a closed instance or an expired lease go
 * to another consumer, the old delivery can no longer settle, and extendLease keeps a delivery.
 */
import { describe, expect, it } from "vitest";
import { group } from "../internal/fixture.js";
import { EMPTY, expectJobsError, quietWindow, rejectionOf } from "../internal/harness.js";
import type { ConformanceOptions } from "../options.js";

/** Redelivery when a consumer dies: unsettled deliveries of a closed instance go to another consumer. */
export function transportRedelivery(options: ConformanceOptions): void {
  group(options, "transport: redelivery after a consumer dies", ({ caps, t, transportCase }) => {
    it(
      "hands deliveries left unsettled by a closed instance to another consumer, with deliveryCount > 1",
      async () => {
        const f = await transportCase("dies", { brokers: 3 });
        const [, dying, survivor] = f.brokers;
        const bodies = ["dies-0", "dies-1", "dies-2"];
        const held = await f.inbox({ broker: dying, prefetch: 3, leaseMs: t.lease });
        await f.publish(...bodies);
        await held.waitForCount(3, t.wait);
        const inbox = await f.inbox({ broker: survivor, prefetch: 10, autoAck: true });
        await dying.close();
        await inbox.waitForCount(3, t.wait);
        expect([...inbox.bodies()].sort()).toEqual(bodies);
        for (const r of inbox.received) expect(r.deliveryCount).toBeGreaterThan(1);
        for (const r of held.received) expectJobsError(await rejectionOf(r.delivery.ack()), ["lease-lost", "broker-closed"]);
        await f.expectCounts(EMPTY);
        expect(inbox.settleErrors).toEqual([]);
      },
      t.testTimeout,
    );

    describe.skipIf(!caps.redeliverOnClose)("redelivery on close [needs capability: redeliverOnClose]", () => {
      it(
        "redelivers at once when the holding instance closes, long before the lease would expire",
        async () => {
          const f = await transportCase("onclose", { brokers: 3 });
          const [, dying, survivor] = f.brokers;
          const held = await f.inbox({ broker: dying, prefetch: 2 });
          await f.publish("onclose-0", "onclose-1");
          await held.waitForCount(2, t.wait);
          const inbox = await f.inbox({ broker: survivor, prefetch: 10, autoAck: true });
          const closedAt = performance.now();
          await dying.close();
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
  group(options, "transport: leases", ({ caps, t, transportCase }) => {
    it(
      "redelivers to another consumer once the lease expires; the old delivery's ack then rejects",
      async () => {
        const f = await transportCase("lease", { brokers: 3 });
        const [, slow, other] = f.brokers;
        const held = await f.inbox({ broker: slow, prefetch: 1, leaseMs: t.lease });
        await f.publish("lease-body");
        const [first] = await held.waitForCount(1, t.wait);
        // The slow consumer takes nothing more, so the redelivery can only go to the other one.
        await held.stop();
        const inbox = await f.inbox({ broker: other, prefetch: 1 });
        const [again] = await inbox.waitForCount(1, t.lease + t.wait);
        expect(again!.body).toBe("lease-body");
        expect(again!.deliveryCount).toBe(2);
        expect(again!.at - first!.at).toBeGreaterThanOrEqual(t.lease - t.slack);
        expectJobsError(await rejectionOf(first!.delivery.ack()), ["lease-lost", "broker-closed"]);
        await again!.delivery.ack();
        await f.expectCounts(EMPTY);
      },
      t.testTimeout,
    );

    describe.skipIf(!caps.leaseExtension)("lease extension [needs capability: leaseExtension]", () => {
      it(
        "keeps a delivery for 3× its lease with extendLease, with no redelivery, then acks it",
        async () => {
          const f = await transportCase("extend", { brokers: 3 });
          const [, holder, other] = f.brokers;
          const held = await f.inbox({ broker: holder, prefetch: 1, leaseMs: t.lease });
          await f.publish("extend-body");
          const [first] = await held.waitForCount(1, t.wait);
          await held.stop();
          const inbox = await f.inbox({ broker: other, prefetch: 1 });
          const until = first!.at + 3 * t.lease;
          while (performance.now() < until) {
            await first!.delivery.extendLease(t.lease);
            await quietWindow(t.lease / 3);
            expect(inbox.received).toHaveLength(0);
          }
          await first!.delivery.ack();
          expect(inbox.received).toHaveLength(0);
          await f.expectCounts(EMPTY);
        },
        t.testTimeout,
      );
    });
  });
}
