import { type } from "arktype";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { defineJob, JobValidationError } from "../src/index.js";
import { waitFor } from "../src/testing/index.js";
import { fixture, rejection } from "./support.js";

async function validationError(promise: Promise<unknown>): Promise<JobValidationError> {
  const error = await rejection(promise);
  expect(error).toBeInstanceOf(JobValidationError);
  return error as JobValidationError;
}

const schemas = {
  zod: z.object({ to: z.email(), count: z.number().int().min(1) }),
  valibot: v.object({ to: v.pipe(v.string(), v.email()), count: v.pipe(v.number(), v.integer(), v.minValue(1)) }),
  arktype: type({ to: "string.email", count: "number.integer >= 1" }),
};

describe.each(Object.entries(schemas))("enqueue with a %s schema", (lib, schema) => {
  it("accepts a valid payload and the worker receives it", async () => {
    const { queue, client, worker: newWorker } = fixture(`schema-${lib}`);
    const job = defineJob({ name: `email.${lib}`, queue, schema });
    const received: unknown[] = [];
    const worker = newWorker().handle(job, (payload) => {
      received.push(payload);
    });
    await worker.start();
    await client.enqueue(job, { to: "ada@example.com", count: 2 });
    await waitFor(() => received.length === 1);
    expect(received).toEqual([{ to: "ada@example.com", count: 2 }]);
  });

  it("rejects an invalid payload with JobValidationError listing the issues, sending nothing", async () => {
    const { broker, queue, client } = fixture(`schema-bad-${lib}`);
    const job = defineJob({ name: `email.${lib}`, queue, schema });
    const error = await validationError(client.enqueue(job, { to: "not-an-email", count: 0 }));
    expect(error.code).toBe("job-validation");
    expect(error.message).toContain(`payload of "email.${lib}" is invalid`);
    expect(error.issues.map((i) => i.path)).toEqual(expect.arrayContaining([["to"], ["count"]]));
    for (const issue of error.issues) {
      expect(Array.isArray(issue.path)).toBe(true);
      expect(Object.getPrototypeOf(issue.path)).toBe(Array.prototype);
      expect(issue.message.length).toBeGreaterThan(0);
    }
    expect((await broker.counts(queue)).waiting).toBe(0);
  });
});

describe("schemas with transforms and async checks", () => {
  it("sends the producer's input and hands the handler the transformed output", async () => {
    const { queue, client, worker: newWorker } = fixture("schema-transform");
    const job = defineJob({
      name: "report",
      queue,
      schema: z.object({ day: z.iso.date().transform((s) => new Date(`${s}T00:00:00Z`)) }),
    });
    const received: unknown[] = [];
    const worker = newWorker().handle(job, (payload) => {
      received.push(payload.day);
    });
    await worker.start();
    await client.enqueue(job, { day: "2024-02-29" });
    await waitFor(() => received.length === 1);
    expect(received[0]).toBeInstanceOf(Date);
    expect((received[0] as Date).toISOString()).toBe("2024-02-29T00:00:00.000Z");
  });

  it("runs an async zod refinement on enqueue and on receipt", async () => {
    const { queue, client, worker: newWorker } = fixture("schema-async");
    const checked: string[] = [];
    const job = defineJob({
      name: "signup",
      queue,
      schema: z.object({
        user: z.string().refine(async (name) => {
          checked.push(name);
          await new Promise((resolve) => setImmediate(resolve));
          return name !== "taken";
        }, "user name is taken"),
      }),
    });
    const error = await validationError(client.enqueue(job, { user: "taken" }));
    expect(error.issues).toEqual([{ message: "user name is taken", path: ["user"] }]);
    expect(checked).toContain("taken");

    await client.enqueue(job, { user: "free" });
    const checksOnEnqueue = checked.filter((name) => name === "free").length;
    expect(checksOnEnqueue).toBeGreaterThan(0);
    const received: string[] = [];
    const worker = newWorker().handle(job, (payload) => {
      received.push(payload.user);
    });
    await worker.start();
    await waitFor(() => received.length === 1);
    expect(received).toEqual(["free"]);
    // Checked again on receipt (zod itself may call a refinement more than once per parse).
    expect(checked.filter((name) => name === "free").length).toBeGreaterThan(checksOnEnqueue);
  });

  it("enqueueMany validates async schemas per item", async () => {
    const { broker, queue, client } = fixture("schema-many");
    const job = defineJob({
      name: "signup",
      queue,
      schema: z.object({ user: z.string().refine(async (name) => name !== "taken", "taken") }),
    });
    const results = await client.enqueueMany([
      { job, payload: { user: "a" } },
      { job, payload: { user: "b" } },
    ]);
    expect(results).toHaveLength(2);
    expect((await broker.counts(queue)).waiting).toBe(2);
  });
});
