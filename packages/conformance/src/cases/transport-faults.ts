/**
 * Transport cases under faults: connections cut or stalled by the fault proxy, and a broker
 * restart. They run only when the adapter's test gives an endpoint or a restart hook.
 */
import { type Broker, JobsError } from "@jobs/core";
import { waitFor } from "@jobs/core/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createFaultProxy, type FaultProxy } from "../fault-proxy.js";
import { group } from "../internal/fixture.js";
import { EMPTY, expectJobsError, message, quietWindow } from "../internal/harness.js";
import type { ConformanceOptions } from "../options.js";

/**
 * Publishes until the broker accepts the message, as an application would after a connection
 * error: only retryable `JobsError`s (connection lost, outcome unknown) are tolerated, anything
 * else fails the case. Dedupe stays on with one id, so a repeated ambiguous publish is stored once
 * on brokers that dedupe.
 */
async function publishEventually(broker: Broker, queue: string, body: string, timeout: number, pollMs: number): Promise<void> {
  const msg = message(body);
  const deadline = performance.now() + timeout;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      const [outcome] = await broker.publish(queue, [msg]);
      if (outcome?.ok) return;
      last = outcome?.error;
    } catch (error) {
      last = error;
    }
    if (!(JobsError.isInstance(last) && last.retryable)) {
      throw new Error(`publish failed with a non-retryable error: ${String(last)}`, { cause: last });
    }
    // Polling for the broker to be reachable again, not waiting for an outcome.
    await quietWindow(pollMs);
  }
  throw new Error(`publish not accepted within ${timeout} ms: ${String(last)}`, { cause: last });
}

/** Reconnect: with the fault proxy in front of the broker, cut or stalled connections recover by themselves. */
export function transportReconnect(options: ConformanceOptions): void {
  group(options, "transport: reconnect", ({ t, transportCase }) => {
    describe.skipIf(options.endpoint === undefined)("reconnect [needs option: endpoint]", () => {
      let proxy: FaultProxy | undefined;
      const through = (): { readonly context: { readonly endpoint: FaultProxy["address"] } } => ({
        context: { endpoint: (proxy as FaultProxy).address },
      });
      const recovery = t.ms(30_000);

      beforeAll(async () => {
        proxy = await createFaultProxy({ target: options.endpoint as NonNullable<ConformanceOptions["endpoint"]> });
      });
      afterEach(() => {
        proxy?.setMode("pass");
      });
      afterAll(async () => {
        await proxy?.close();
      });

      it(
        "resumes publishing and consuming by itself after every connection is reset, losing no accepted publish",
        async () => {
          const f = await transportCase("reconnect", through());
          const { producer, q } = f;
          const inbox = await f.inbox({ prefetch: 10, leaseMs: t.lease, autoAck: true });
          await f.publish("before");
          await inbox.waitForCount(1, t.wait);
          expect(proxy!.connections).toBeGreaterThan(0);
          proxy!.setMode("reset");
          // Hold the outage a moment, so reconnect attempts are refused too.
          await quietWindow(t.ms(300));
          proxy!.setMode("pass");
          const bodies = ["after-1", "after-2", "after-3"];
          for (const body of bodies) await publishEventually(producer, q, body, recovery, t.ms(50));
          await waitFor(() => bodies.every((b) => inbox.bodies().includes(b)), {
            timeout: recovery,
            message: "messages accepted after the reset were not all delivered",
          });
          expect(inbox.bodies()).toContain("before");
          await f.expectCounts(EMPTY, { timeout: recovery });
        },
        3 * t.ms(30_000),
      );

      it(
        "a delivery held across a reset is either still settleable or redelivered",
        async () => {
          const f = await transportCase("heldreset", through());
          const held = await f.inbox({ prefetch: 1, leaseMs: t.lease });
          await f.publish("held-across");
          const [first] = await held.waitForCount(1, t.wait);
          proxy!.resetConnections();
          let ackError: unknown;
          try {
            await first!.delivery.ack();
          } catch (error) {
            ackError = error;
          }
          if (ackError === undefined) {
            // The lease survived the reset and the ack landed: the message must not come back.
            await quietWindow(t.lease + t.quiet);
            expect(held.received).toHaveLength(1);
          } else {
            expectJobsError(ackError, ["lease-lost", "broker-closed", "broker-connection"]);
            const [, again] = await held.waitForCount(2, t.lease + recovery);
            expect(again!.body).toBe("held-across");
            await again!.delivery.ack();
          }
          await f.expectCounts(EMPTY, { timeout: recovery });
        },
        3 * t.ms(30_000),
      );

      it(
        "a publish issued while the connection stalls settles once bytes flow again",
        async () => {
          const f = await transportCase("stall", through());
          const { producer, q } = f;
          const inbox = await f.inbox({ prefetch: 10, leaseMs: t.lease, autoAck: true });
          proxy!.pause();
          const pending = producer.publish(q, [message("stalled")]).then(
            (outcomes) => ({ outcomes, error: undefined as unknown }),
            (error: unknown) => ({ outcomes: undefined, error }),
          );
          await quietWindow(t.ms(300));
          proxy!.resume();
          const result = await pending;
          if (result.outcomes?.[0]?.ok) {
            await waitFor(() => inbox.bodies().includes("stalled"), { timeout: recovery, message: "accepted publish was lost" });
          } else {
            const error = result.outcomes?.[0]?.ok === false ? result.outcomes[0].error : result.error;
            expect(JobsError.isInstance(error) && error.retryable, `expected a retryable JobsError, got ${String(error)}`).toBe(true);
          }
          await publishEventually(producer, q, "after-stall", recovery, t.ms(50));
          await waitFor(() => inbox.bodies().includes("after-stall"), { timeout: recovery, message: "publish after the stall was lost" });
        },
        3 * t.ms(30_000),
      );
    });
  });
}

/** Restart: after the broker server restarts, instances reconnect by themselves; durable brokers keep accepted messages. */
export function transportRestart(options: ConformanceOptions): void {
  group(options, "transport: broker restart", ({ caps, t, transportCase }) => {
    describe.skipIf(options.restart === undefined)("restart [needs option: restart]", () => {
      const recovery = t.ms(30_000);

      it(
        "publishes and consumes again after a restart, through the same instances",
        async () => {
          const f = await transportCase("restart");
          const { producer, q } = f;
          const inbox = await f.inbox({ prefetch: 10, leaseMs: t.lease, autoAck: true });
          await f.publish("before-restart");
          await inbox.waitForCount(1, t.wait);
          await options.restart!();
          await publishEventually(producer, q, "after-restart", recovery, t.ms(100));
          await waitFor(() => inbox.bodies().includes("after-restart"), { timeout: recovery, message: "consumer did not resume" });
        },
        4 * t.ms(30_000),
      );

      describe.skipIf(!caps.durable)("durability [needs capability: durable]", () => {
        it(
          "delivers after a restart every message accepted before it",
          async () => {
            const f = await transportCase("durable", { brokers: 1 });
            const bodies = Array.from({ length: 5 }, (_, i) => `durable-${i}`);
            await f.publish(...bodies);
            await options.restart!();
            const inbox = await f.inbox({ broker: await f.broker(), prefetch: 10, leaseMs: t.lease, autoAck: true });
            await inbox.waitForCount(bodies.length, recovery);
            expect([...new Set(inbox.bodies())].sort()).toEqual(bodies);
          },
          4 * t.ms(30_000),
        );
      });
    });
  });
}
