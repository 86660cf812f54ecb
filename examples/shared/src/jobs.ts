// Job definitions: the only thing a producer imports. Handlers live with the worker (handlers.ts).
import { defineJob } from "@jobs/core";
import { z } from "zod";

/** Payload checked by a schema on enqueue and again on receipt. */
export const sendWelcomeEmail = defineJob({
  name: "email.welcome",
  queue: "emails",
  schema: z.object({ to: z.email(), name: z.string().min(1) }),
});

/** A reminder sent later: enqueued with a delay. */
export const sendReminder = defineJob<{ userId: string; text: string }>({
  name: "email.reminder",
  queue: "emails",
});

/** Image work with priorities: thumbnails for paying users jump the queue. */
export const resizeImage = defineJob<{ imageId: string; width: number }>({
  name: "image.resize",
  queue: "media",
  timeout: "2m",
});

/** Fails for declined cards: retried with a short backoff, then dead-lettered. */
export const chargeCard = defineJob<{ orderId: string; cents: number; card: "ok" | "declined" }>({
  name: "payment.charge",
  queue: "payments",
  maxAttempts: 3,
  backoff: { type: "fixed", delay: "200ms" },
});

/** A report built page by page: reports progress, returns a result, and keeps its records a week (needs a job store). */
export const buildReport = defineJob<{ account: string; pages: number }>({
  name: "report.build",
  queue: "reports",
  retain: { succeeded: { age: "7d", count: 1_000 } },
});
