/**
 * Deliberately broken broker wrappers for the negative controls (RELIABILITY.md R11). Test-only:
 * they exist to prove that the suite detects the bugs they introduce.
 */
import type { Broker, Delivery } from "@jobs/core";

/**
 * R11-C2: acknowledges every delivery the moment it arrives, before the handler runs (the Sidekiq
 * BRPOP bug). Core's later settlement is swallowed. A worker killed mid-job then loses its jobs.
 */
export function ackBeforeHandle(inner: Broker): Broker {
  return {
    name: inner.name,
    capabilities: inner.capabilities,
    publish: (queue, messages) => inner.publish(queue, messages),
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
    counts: (queue) => inner.counts(queue),
    listDeadLetters: (queue, options) => inner.listDeadLetters(queue, options),
    removeDeadLetters: (queue, keys) => inner.removeDeadLetters(queue, keys),
    purge: (queue) => inner.purge(queue),
    on: (event, listener) => inner.on(event, listener),
    close: () => inner.close(),
  };
}
