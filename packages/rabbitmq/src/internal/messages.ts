/**
 * What the adapter reads from and writes into message headers: delivery counts (its own header on
 * classic queues, RabbitMQ's on quorum queues) and dead-letter records.
 */
import type { DeadLetter, DeadLetterRecord } from "@jobs/core/adapter";
import type { ConsumeMessage } from "amqplib";

/** Header carrying the delivery count across redeliveries (classic queues only flag `redelivered`). */
export const COUNT_HEADER = "x-jobs-deliveries";
/** Header of a dead letter: its reason, error and time as JSON. */
export const DEAD_HEADER = "x-jobs-dead";

type Headers = ConsumeMessage["properties"]["headers"];

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;
}

/**
 * A quorum queue's delivery count, 1 the first time. RabbitMQ adds `x-delivery-count` from the first
 * return on (absent, 1, 2, … on 3.10–4.2); 4.3 counts only failed returns there and every
 * acquisition in `x-acquired-count`, so the larger of the two is the number of earlier deliveries.
 */
export function quorumDeliveryCount(headers: Headers): number {
  return 1 + Math.max(count(headers?.["x-delivery-count"]), count(headers?.["x-acquired-count"]));
}

/** The adapter's own count on a classic queue (1 unless a redelivery was republished with its count). */
export function classicDeliveryCount(headers: Headers): number {
  const value = headers?.[COUNT_HEADER];
  return typeof value === "number" ? value : 1;
}

/** Seconds or a Date, as amqplib decodes an AMQP timestamp, to ms since the epoch. */
function timestampMs(value: unknown): number {
  if (value instanceof Date) return value.getTime();
  if (typeof value === "number") return value * 1000;
  const inner = (value as { value?: unknown } | undefined)?.value;
  return typeof inner === "number" ? inner * 1000 : 0;
}

/** A dead letter as stored by the adapter, by RabbitMQ's delivery limit, or put there by someone else. */
export function toDeadLetter(msg: ConsumeMessage): DeadLetter {
  const headers = msg.properties.headers;
  const key = String(msg.properties.messageId ?? msg.fields.deliveryTag);
  const body = msg.content.toString("utf8");
  const raw = headers?.[DEAD_HEADER];
  if (raw !== undefined) {
    try {
      const meta = JSON.parse(String(raw)) as Partial<DeadLetterRecord>;
      return {
        key,
        body,
        reason: meta.reason ?? "undecodable",
        error: meta.error ?? { name: "Error", message: "no failure recorded" },
        failedAt: meta.failedAt ?? 0,
      };
    } catch {
      // Not ours after all: listed with what it has.
    }
  }
  const deaths = headers?.["x-death"];
  const first = Array.isArray(deaths) ? (deaths[0] as Record<string, unknown> | undefined) : undefined;
  if (first?.reason === "delivery_limit") {
    // The quorum queue's backstop: RabbitMQ moved it without a word of why the job kept failing.
    return {
      key,
      body,
      reason: "crash-loop",
      error: {
        name: "DeliveryLimitError",
        message:
          "[jobs] [rabbitmq] dead-lettered by the quorum queue's x-delivery-limit (its consumers kept dying or losing it); no failure was recorded",
      },
      failedAt: timestampMs(first.time),
    };
  }
  return { key, body, reason: "undecodable", error: { name: "Error", message: "no failure recorded" }, failedAt: 0 };
}
