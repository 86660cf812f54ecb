// @jobs/sqs: the Broker contract on Amazon SQS, with batched sends, deletes and visibility changes.
import { SqsAdapter, type SqsBroker } from "./broker.js";
import type { SqsBrokerOptions } from "./options.js";

export type { SqsBroker } from "./broker.js";
export { sqsCapabilities } from "./capabilities.js";
export { type SqsQueueNames, sqsQueueNames } from "./names.js";
export type { SqsBrokerOptions } from "./options.js";

/** Creates a broker on Amazon SQS (or a compatible endpoint). Queues are created on first use unless `queues: "verify"`. */
export function createSqsBroker(options: SqsBrokerOptions = {}): SqsBroker {
  return new SqsAdapter(options);
}
