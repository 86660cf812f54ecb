/** Records to script arguments and back: the fields of `StoredJob` as hash fields, numbers as text. */
import { randomUUID } from "node:crypto";
import type { FinishRequest, JobStatus, NewJobRecord, Priority, StoredJob } from "@jobs/core/adapter";

/** An optional script argument: "" when absent, else "=" and the value (so an empty value stays distinct). */
export function opt(value: string | number | undefined): string {
  return value === undefined ? "" : `=${value}`;
}

const PROCESS_TOKEN = randomUUID().slice(0, 13);
let requests = 0;

/**
 * A token unique to one request (this process's random prefix and a counter): kept in the record by
 * insert, claim and finish, so that a replay of the same script call (ioredis resends a command
 * whose reply a dropped connection lost) answers what the first run did (lua/store/common.lua).
 */
export function requestToken(): string {
  return `${PROCESS_TOKEN}:${++requests}`;
}

/** The 8 arguments of one finish for finishOne (lua/store/common.lua): finish.lua's, and a fused settle's after "F" and the member. */
export function finishArgs(f: FinishRequest): (string | number)[] {
  return [f.id, f.fence, f.status, opt(f.resultJson), opt(f.errorJson), opt(f.attempt), opt(f.runAt), requestToken()];
}

/** The 16 arguments of one record for insert.lua. */
export function insertArgs(r: NewJobRecord): (string | number)[] {
  return [
    r.id,
    r.name,
    r.queue,
    r.status,
    r.attempt,
    r.maxAttempts,
    r.priority,
    JSON.stringify(r.tags),
    opt(r.metadataJson),
    opt(r.traceJson),
    r.payloadJson,
    r.enqueuedAt,
    r.runAt,
    r.timeout,
    r.gen,
    requestToken(),
  ];
}

/** A hash as a script returns it (HGETALL: field, value, field, value, …) or as ioredis's hgetall gives it. */
export function decodeRecord(hash: readonly string[] | Readonly<Record<string, string>>): StoredJob {
  const h: Record<string, string> = {};
  if (Array.isArray(hash)) for (let i = 0; i + 1 < hash.length; i += 2) h[hash[i] as string] = hash[i + 1] as string;
  else Object.assign(h, hash);
  const num = (field: string): number => Number(h[field]);
  const job: Record<string, unknown> = {
    id: h.id,
    name: h.name,
    queue: h.queue,
    status: h.status as JobStatus,
    attempt: num("attempt"),
    maxAttempts: num("maxAttempts"),
    priority: h.priority as Priority,
    tags: JSON.parse(h.tags ?? "[]") as string[],
    payloadJson: h.payloadJson,
    enqueuedAt: num("enqueuedAt"),
    runAt: num("runAt"),
    timeout: num("timeout"),
    gen: num("gen"),
    fence: num("fence"),
    claims: num("claims"),
    claimExpiresAt: num("claimExpiresAt"),
    published: h.published === "1",
    cancelRequested: h.cancelRequested === "1",
    updatedAt: num("updatedAt"),
  };
  for (const field of ["metadataJson", "traceJson"]) if (h[field] !== undefined) job[field] = h[field];
  // insert.lua writes these as "" (none yet); none of them is "" when set (JSON, a worker's id).
  for (const field of ["worker", "resultJson", "progressJson", "errorJson"]) {
    if (h[field] !== undefined && h[field] !== "") job[field] = h[field];
  }
  for (const field of ["startedAt", "finishedAt"]) if (h[field] !== undefined && h[field] !== "") job[field] = num(field);
  return job as unknown as StoredJob;
}
