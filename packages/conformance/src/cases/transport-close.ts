/**
 * Transport cases on closing: close is graceful and idempotent, a closed instance rejects new work
 * and receives nothing more, and Subscription.stop() ends a consumer.
 */
import { expect, it } from "vitest";
import { group } from "../internal/fixture.js";
import { EMPTY, expectJobsError, message, quietWindow, rejectionOf } from "../internal/harness.js";
import type { ConformanceOptions } from "../options.js";

/** Close: graceful and idempotent; a closed instance rejects new work and receives nothing more; stop() ends a consumer. */
export function transportClose(options: ConformanceOptions): void {
  group(options, "transport: close", ({ t, transportCase }) => {
    it(
      "close resolves and is idempotent, sequentially and concurrently",
      async () => {
        const f = await transportCase("close", { brokers: 1 });
        const broker = f.producer;
        await broker.consume(f.q, { prefetch: 1, leaseMs: t.longLease }, () => {});
        await expect(Promise.all([broker.close(), broker.close()])).resolves.toBeDefined();
        await expect(broker.close()).resolves.toBeUndefined();
      },
      t.testTimeout,
    );

    it(
      "rejects publish and consume after close with BrokerClosedError",
      async () => {
        const f = await transportCase("closed");
        const [broker, observer] = f.brokers;
        await broker.close();
        expectJobsError(await rejectionOf(broker.publish(f.q, [message("after-close")])), ["broker-closed"]);
        expectJobsError(await rejectionOf(broker.consume(f.q, { prefetch: 1, leaseMs: t.longLease }, () => {})), ["broker-closed"]);
        await f.expectCounts(EMPTY, { source: observer });
      },
      t.testTimeout,
    );

    it(
      "a closed instance's consumer receives nothing more; another consumer gets the messages",
      async () => {
        const f = await transportCase("closedcons", { brokers: 3 });
        const [, closing, other] = f.brokers;
        const closedInbox = await f.inbox({ broker: closing, prefetch: 10, autoAck: true });
        await closing.close();
        await f.publish("after-1", "after-2");
        await quietWindow(t.quiet);
        expect(closedInbox.received).toHaveLength(0);
        const inbox = await f.inbox({ broker: other, prefetch: 10, autoAck: true });
        await inbox.waitForCount(2, t.wait);
        expect(closedInbox.received).toHaveLength(0);
      },
      t.testTimeout,
    );

    it(
      "Subscription.stop() ends new deliveries, while deliveries already held can still be acked",
      async () => {
        const f = await transportCase("stop");
        const inbox = await f.inbox({ prefetch: 1 });
        await f.publish("held");
        const [held] = await inbox.waitForCount(1, t.wait);
        await inbox.stop();
        await f.publish("not-for-stopped");
        await held!.delivery.ack();
        await quietWindow(t.quiet);
        expect(inbox.bodies()).toEqual(["held"]);
        await f.expectCounts({ ...EMPTY, waiting: 1 });
      },
      t.testTimeout,
    );
  });
}
