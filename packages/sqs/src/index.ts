// @jobs/sqs: the Broker contract on Amazon SQS, with batched sends, deletes and visibility changes.
export { type SqsQueueNames, sqsQueueNames } from "./internal/names.js";
export { createSqsBroker, type SqsBrokerOptions, sqsCapabilities } from "./sqs-broker.js";
