// Handlers and the context they need. Values such as a mailer or a database pool are injected
// into the worker, never sent in payloads.
import type { Worker } from "@jobs/core";
import { buildReport, chargeCard, resizeImage, sendReminder, sendWelcomeEmail } from "./jobs.js";

/** A stand-in for a real mail client. */
export interface Mailer {
  send(to: string, subject: string): Promise<void>;
}

/** What every handler gets through `ctx.context`. */
export interface AppContext {
  readonly mailer: Mailer;
  readonly log: (line: string) => void;
}

/** Registers every example handler on a worker. */
export function registerHandlers(worker: Worker<AppContext>): Worker<AppContext> {
  return worker
    .handle(sendWelcomeEmail, async ({ to, name }, { context, job }) => {
      await context.mailer.send(to, `Welcome, ${name}!`);
      context.log(`[email.welcome] sent welcome email to ${to} (attempt ${job.attempt})`);
    })
    .handle(sendReminder, async ({ userId, text }, { context, job }) => {
      const late = Date.now() - job.runAt;
      context.log(`[email.reminder] reminded ${userId}: "${text}" (due ${late} ms ago, never early)`);
    })
    .handle(resizeImage, async ({ imageId, width }, { context, job, signal }) => {
      signal.throwIfAborted();
      context.log(`[image.resize] resized ${imageId} to ${width}px (priority ${job.priority})`);
    })
    .handle(chargeCard, async ({ orderId, cents, card }, { context, job }) => {
      if (card === "declined") {
        context.log(`[payment.charge] order ${orderId}: card declined (attempt ${job.attempt} of ${job.maxAttempts})`);
        throw new Error(`card declined for order ${orderId}`);
      }
      context.log(`[payment.charge] charged ${(cents / 100).toFixed(2)} for order ${orderId}`);
    });
}

/** What the report handler gets through `ctx.context`. */
export interface ReportContext {
  readonly log: (line: string) => void;
}

/** Registers the report handler (records example): progress per page, and a result. */
export function registerReportHandler(worker: Worker<ReportContext>): Worker<ReportContext> {
  return worker.handle(buildReport, async ({ account, pages }, ctx) => {
    for (let page = 1; page <= pages; page++) {
      ctx.signal.throwIfAborted();
      // Kept in the job's record: getJob(id).progress is the last value. Call it on ctx (it is a method).
      await ctx.progress({ page, of: pages });
    }
    ctx.context.log(`[report.build] built ${pages} pages for ${account} (claim fence ${ctx.fence})`);
    // The return value is the job's result: job.result() and getJob(id).result.
    return { account, pages, url: `https://reports.example/${account}.pdf` };
  });
}
