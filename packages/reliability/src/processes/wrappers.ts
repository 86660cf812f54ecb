/**
 * Broker wrappers of the worker processes. `ackBeforeHandle` is deliberately broken (negative
 * control R11-C2, to prove that the suite detects the bug it introduces); `recordReceives` only
 * observes (R1's slow orphans: where an orphan was between its kill and its next start).
 */
import type { Broker } from "@jobs/core";
import type { Delivery } from "@jobs/core/adapter";

/**
 * R11-C2: acknowledges every delivery the moment it arrives, before the handler runs (the Sidekiq
 * BRPOP bug). Core's later settlement is swallowed. A worker killed mid-job then loses its jobs.
 */
export function ackBeforeHandle(inner: Broker): Broker {
  return delegating(inner, {
    consume: (queue, options, onDelivery) =>
      inner.consume(queue, options, (delivery) => {
        const acked = delivery.ack();
        const settled = async (): Promise<void> => {
          await acked;
        };
        const broken: Delivery = {
          body: delivery.body,
          deliveryCount: delivery.deliveryCount,
          local: delivery.local,
          ack: settled,
          retry: settled,
          defer: settled,
          deadLetter: settled,
          extendLease: settled,
        };
        acked.then(
          () => onDelivery(broken),
          () => onDelivery(broken),
        );
      }),
  });
}

/**
 * Writes a `recv` ledger line (the job's key and the broker's delivery count) for every delivery as
 * it arrives, before core sees it: a delivery buffered by a worker that is killed before starting it
 * shows up here and nowhere else. The delivery itself is passed on untouched.
 */
export function recordReceives(inner: Broker, write: (kind: string, fields: Record<string, unknown>) => void): Broker {
  return delegating(inner, {
    consume: (queue, options, onDelivery) =>
      inner.consume(queue, options, (delivery) => {
        write("recv", { id: keyOfBody(delivery.body), n: delivery.deliveryCount });
        onDelivery(delivery);
      }),
  });
}

/** A broker that forwards every call to `inner`, except the members given in `overrides`. */
export function delegating(inner: Broker, overrides: Partial<Pick<Broker, "publish" | "consume">>): Broker {
  return {
    name: inner.name,
    capabilities: inner.capabilities,
    publish: (queue, messages) => inner.publish(queue, messages),
    consume: (queue, options, onDelivery) => inner.consume(queue, options, onDelivery),
    counts: (queue) => inner.counts(queue),
    listDeadLetters: (queue, options) => inner.listDeadLetters(queue, options),
    removeDeadLetters: (queue, keys) => inner.removeDeadLetters(queue, keys),
    purge: (queue) => inner.purge(queue),
    on: (event, listener) => inner.on(event, listener),
    close: () => inner.close(),
    ...overrides,
  };
}

/** The chaos payload's key `k` in an encoded envelope, without depending on the envelope's layout. */
function keyOfBody(body: string): string | undefined {
  const match = /"k":"([^"]{1,64})"/.exec(body);
  return match?.[1];
}
