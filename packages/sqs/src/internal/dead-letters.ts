import type { Message, MessageAttributeValue } from "@aws-sdk/client-sqs";
import type { DeadLetter, DeadLetterReason, DeadLetterRecord } from "@jobs/core/adapter";

// The failure travels as message attributes beside the body, so the body stays byte for byte.
const A_REASON = "jobs-reason";
const A_ERROR = "jobs-error";
const A_FAILED_AT = "jobs-failed-at";
const REASONS: readonly DeadLetterReason[] = [
  "max-attempts",
  "non-retryable",
  "unknown-job",
  "validation",
  "undecodable",
  "crash-loop",
  "signature",
];

/**
 * The attributes that record a failure, and the message size they make with the body. A long
 * stack must not push the record over the size limit: it is dropped first.
 */
export function deadLetterAttributes(
  record: DeadLetterRecord,
  limit: number,
): { attributes: Record<string, MessageAttributeValue>; bytes: number } {
  const build = (error: DeadLetterRecord["error"]): Record<string, MessageAttributeValue> => ({
    [A_REASON]: { DataType: "String", StringValue: record.reason },
    [A_FAILED_AT]: { DataType: "Number", StringValue: String(record.failedAt) },
    [A_ERROR]: { DataType: "String", StringValue: JSON.stringify(error) },
  });
  const size = (a: Record<string, MessageAttributeValue>): number =>
    Buffer.byteLength(record.body, "utf8") + Buffer.byteLength(JSON.stringify(a), "utf8");
  let attributes = build(record.error);
  if (size(attributes) > limit) attributes = build({ name: record.error.name, message: record.error.message.slice(0, 1000) });
  return { attributes, bytes: size(attributes) };
}

/** Reads a received dead letter back; one without our attributes was moved by the RedrivePolicy. */
export function deadLetterOf(m: Message, key: string, maxReceiveCount: number): DeadLetter {
  const a = m.MessageAttributes ?? {};
  const reason = a[A_REASON]?.StringValue as DeadLetterReason | undefined;
  const sent = Number(m.Attributes?.SentTimestamp ?? 0);
  if (reason === undefined || !REASONS.includes(reason)) {
    const message = `[jobs] [sqs] moved by the queue's RedrivePolicy after ${maxReceiveCount} receives`;
    return { key, body: m.Body ?? "", reason: "crash-loop", error: { name: "RedrivePolicy", message }, failedAt: sent };
  }
  let error: DeadLetter["error"];
  try {
    error = JSON.parse(a[A_ERROR]?.StringValue ?? "") as DeadLetter["error"];
  } catch {
    error = { name: "Error", message: "unreadable failure record" };
  }
  return { key, body: m.Body ?? "", reason, error, failedAt: Number(a[A_FAILED_AT]?.StringValue ?? sent) };
}
