import { type } from "arktype";
import * as v from "valibot";
import { describe, expectTypeOf, it } from "vitest";
import { z } from "zod";
import type { Broker } from "../src/broker.js";
import { createClient, type EnqueuedJob } from "../src/client.js";
import { defineJob, type HandlerPayloadOf, type JobDefinition, type PayloadOf } from "../src/define-job.js";
import { recordEnqueued } from "../src/testing/index.js";
import { createWorker, type JobContext } from "../src/worker.js";

declare const broker: Broker;

describe("payload inference from a Standard Schema", () => {
  it("zod 4", () => {
    const job = defineJob({ name: "email.send", schema: z.object({ to: z.email(), cc: z.array(z.string()).optional() }) });
    expectTypeOf<PayloadOf<typeof job>>().toEqualTypeOf<{ to: string; cc?: string[] | undefined }>();
    expectTypeOf<HandlerPayloadOf<typeof job>>().toEqualTypeOf<{ to: string; cc?: string[] | undefined }>();
  });

  it("zod 4 with a transform: producers pass the input, handlers get the output", () => {
    const job = defineJob({
      name: "report.build",
      schema: z.object({ day: z.string().transform((s) => new Date(s)), limit: z.string().pipe(z.coerce.number()) }),
    });
    expectTypeOf<PayloadOf<typeof job>>().toEqualTypeOf<{ day: string; limit: string }>();
    expectTypeOf<HandlerPayloadOf<typeof job>>().toEqualTypeOf<{ day: Date; limit: number }>();
    expectTypeOf(job).toExtend<JobDefinition<{ day: string; limit: string }, { day: Date; limit: number }>>();
  });

  it("zod 4 with a default: the input may omit the field, the output has it", () => {
    const job = defineJob({ name: "a", schema: z.object({ retries: z.number().default(3) }) });
    expectTypeOf<PayloadOf<typeof job>>().toEqualTypeOf<{ retries?: number | undefined }>();
    expectTypeOf<HandlerPayloadOf<typeof job>>().toEqualTypeOf<{ retries: number }>();
  });

  it("valibot 1", () => {
    const job = defineJob({
      name: "user.welcome",
      schema: v.object({ userId: v.number(), locale: v.optional(v.picklist(["en", "fr"])) }),
    });
    expectTypeOf<PayloadOf<typeof job>>().toEqualTypeOf<{ userId: number; locale?: "en" | "fr" | undefined }>();
    expectTypeOf<HandlerPayloadOf<typeof job>>().toEqualTypeOf<{ userId: number; locale?: "en" | "fr" | undefined }>();
  });

  it("valibot 1 with a transform", () => {
    const job = defineJob({
      name: "a",
      schema: v.object({
        n: v.pipe(
          v.string(),
          v.transform((s) => s.length),
        ),
      }),
    });
    expectTypeOf<PayloadOf<typeof job>>().toEqualTypeOf<{ n: string }>();
    expectTypeOf<HandlerPayloadOf<typeof job>>().toEqualTypeOf<{ n: number }>();
  });

  it("arktype 2", () => {
    const job = defineJob({ name: "image.resize", schema: type({ url: "string", width: "number", "tags?": "string[]" }) });
    expectTypeOf<PayloadOf<typeof job>>().toEqualTypeOf<{ url: string; width: number; tags?: string[] }>();
    expectTypeOf<HandlerPayloadOf<typeof job>>().toEqualTypeOf<{ url: string; width: number; tags?: string[] }>();
  });

  it("arktype 2 with a morph", () => {
    const job = defineJob({ name: "a", schema: type({ n: "string.numeric.parse" }) });
    expectTypeOf<PayloadOf<typeof job>>().toEqualTypeOf<{ n: string }>();
    expectTypeOf<HandlerPayloadOf<typeof job>>().toEqualTypeOf<{ n: number }>();
  });
});

describe("payload from a type parameter", () => {
  it("defineJob<{ to: string }> gives that payload on both sides", () => {
    const job = defineJob<{ to: string }>({ name: "x" });
    expectTypeOf(job).toEqualTypeOf<JobDefinition<{ to: string }, { to: string }>>();
    expectTypeOf<PayloadOf<typeof job>>().toEqualTypeOf<{ to: string }>();
    expectTypeOf<HandlerPayloadOf<typeof job>>().toEqualTypeOf<{ to: string }>();
  });

  it("no schema and no type parameter gives unknown", () => {
    const job = defineJob({ name: "x" });
    expectTypeOf<PayloadOf<typeof job>>().toBeUnknown();
  });

  it("options are checked", () => {
    // @ts-expect-error: priority must be one of the five names
    defineJob({ name: "x", priority: "urgent" });
    // @ts-expect-error: timeout is a duration, not a boolean
    defineJob({ name: "x", timeout: true });
    // @ts-expect-error: name is required
    defineJob({ queue: "q" });
    // @ts-expect-error: backoff type is a closed union
    defineJob({ name: "x", backoff: { type: "random" } });
    defineJob({ name: "x", backoff: (attempt) => attempt * 1000, timeout: "5m", priority: "high", maxAttempts: 3 });
  });
});

describe("client.enqueue", () => {
  const client = createClient({ broker });
  const email = defineJob({ name: "email.send", schema: z.object({ to: z.string(), n: z.string().transform(Number) }) });
  const typed = defineJob<{ to: string }>({ name: "typed" });

  it("takes the schema's input type", () => {
    expectTypeOf(client.enqueue(email, { to: "a", n: "1" })).toEqualTypeOf<Promise<EnqueuedJob>>();
    expectTypeOf(client.enqueue(typed, { to: "a" }, { delay: "5m", priority: "high" })).resolves.toEqualTypeOf<EnqueuedJob>();
  });

  it("rejects a wrong payload at compile time", () => {
    // @ts-expect-error: n is the schema's input (string), not its output (number)
    void client.enqueue(email, { to: "a", n: 1 });
    // @ts-expect-error: to is missing
    void client.enqueue(typed, {});
    // @ts-expect-error: to must be a string
    void client.enqueue(typed, { to: 42 });
    // @ts-expect-error: the payload is required
    void client.enqueue(typed);
  });

  it("rejects bad options at compile time", () => {
    // @ts-expect-error: not a priority
    void client.enqueue(typed, { to: "a" }, { priority: "urgent" });
    // @ts-expect-error: metadata values are scalars
    void client.enqueue(typed, { to: "a" }, { metadata: { nested: { a: 1 } } });
  });

  it("enqueueMany takes items of different jobs", () => {
    expectTypeOf(
      client.enqueueMany([
        { job: typed, payload: { to: "a" } },
        { job: email, payload: { to: "b", n: "2" }, options: { delay: 10 } },
      ]),
    ).resolves.toEqualTypeOf<EnqueuedJob[]>();
  });
});

describe("worker.handle", () => {
  const email = defineJob({ name: "email.send", schema: z.object({ to: z.string(), n: z.string().transform(Number) }) });

  it("gives the handler the schema's output type", () => {
    createWorker({ broker }).handle(email, (payload, ctx) => {
      expectTypeOf(payload).toEqualTypeOf<{ to: string; n: number }>();
      expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>();
      expectTypeOf(ctx.job.attempt).toBeNumber();
    });
  });

  it("gives the handler the context type of createWorker({ context })", () => {
    interface Deps {
      readonly db: { query(sql: string): Promise<unknown[]> };
      readonly mailer: { send(to: string): Promise<void> };
    }
    const deps: Deps = { db: { query: async () => [] }, mailer: { send: async () => {} } };
    const worker = createWorker({ broker, context: deps, concurrency: 4 });
    worker.handle(email, async (payload, ctx) => {
      expectTypeOf(ctx).toEqualTypeOf<JobContext<Deps>>();
      expectTypeOf(ctx.context).toEqualTypeOf<Deps>();
      await ctx.context.mailer.send(payload.to);
      // @ts-expect-error: not part of the context
      ctx.context.cache;
    });
  });

  it("has an undefined context without one", () => {
    createWorker({ broker }).handle(email, (_payload, ctx) => {
      expectTypeOf(ctx.context).toEqualTypeOf<undefined>();
    });
  });

  it("rejects a handler for another payload type", () => {
    const typed = defineJob<{ to: string }>({ name: "typed" });
    // @ts-expect-error: the handler expects a number payload
    createWorker({ broker }).handle(typed, (payload: number) => payload);
  });

  it("chains", () => {
    const typed = defineJob<{ to: string }>({ name: "typed" });
    const worker = createWorker({ broker, context: { n: 1 } });
    expectTypeOf(worker.handle(typed, () => {}).handle(email, () => {})).toEqualTypeOf(worker);
  });
});

describe("test helpers", () => {
  it("recordEnqueued takes jobs and payload matchers of the job's input type", () => {
    const client = createClient({ broker });
    const typed = defineJob<{ to: string }>({ name: "typed" });
    const recorder = recordEnqueued(client);
    recorder.assertEnqueued(typed, { payload: { to: "a" } });
    recorder.assertEnqueued(typed, { payload: (p) => p.to.startsWith("a") });
    recorder.assertNotEnqueued(typed, { queue: "default" });
    expectTypeOf(recorder.jobs(typed)).toBeArray();
    // @ts-expect-error: payload must match the job's input type
    recorder.assertEnqueued(typed, { payload: { to: 1 } });
  });
});
