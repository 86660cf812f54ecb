/** What job cases share: a counted payload with its schema, raw envelopes, the job an event is about. */
import { randomUUID } from "node:crypto";
import type { JobDefinition, JobInfo } from "@jobs/core";
import type { Envelope } from "@jobs/core/adapter";
import type { WorkerEvent } from "./fixture.js";

/** A payload with a count. */
export interface Counted {
  readonly n: number;
}

/** A hand-written Standard Schema (no validation library needed): `{ n: number }`. */
export const countedSchema: NonNullable<JobDefinition<Counted>["schema"]> = {
  "~standard": {
    version: 1,
    vendor: "jobs-conformance",
    validate(value: unknown) {
      if (typeof value === "object" && value !== null && typeof (value as { n?: unknown }).n === "number") {
        return { value: value as Counted };
      }
      return { issues: [{ message: "n must be a number", path: ["n"] }] };
    },
  },
};

/** The job an event is about, if any. */
export function jobOf(event: WorkerEvent): JobInfo | undefined {
  return "job" in event.data ? event.data.job : undefined;
}

/** The raw envelope core would write for a job, for cases that publish bytes themselves. */
export function rawEnvelope(queue: string, name: string, payload: unknown): Envelope {
  const now = Date.now();
  return {
    v: 1,
    id: randomUUID(),
    name,
    queue,
    payload,
    attempt: 1,
    maxAttempts: 3,
    priority: "normal",
    enqueuedAt: now,
    runAt: now,
    timeout: 30_000,
  };
}
