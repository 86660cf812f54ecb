/** The shape of the work every contender does: the same payloads, the same no-op. */

/** A payload of about 100 bytes of JSON, like a typical small job (ids and a short string). */
export interface BenchPayload {
  readonly seq: number;
  readonly userId: string;
  readonly email: string;
  readonly note: string;
}

/** Builds payload `seq`; its JSON is 100 ± 4 bytes for any seq below 10^7. */
export function makePayload(seq: number): BenchPayload {
  const id = String(seq).padStart(7, "0");
  return { seq, userId: `user-${id}`, email: `someone+${id}@example.com`, note: "welcome email, plain" };
}

/** `n` payloads, built before the clock starts. */
export function makePayloads(n: number): BenchPayload[] {
  const payloads: BenchPayload[] = new Array(n);
  for (let i = 0; i < n; i++) payloads[i] = makePayload(i);
  return payloads;
}

/** How many times `noop` ran: every trial checks that each of its jobs ran exactly once. */
export const ran: { count: number } = { count: 0 };

/** The handler and task every contender runs: async, counts itself, does nothing else (the cost measured is the machinery's). */
export async function noop(_payload?: unknown): Promise<void> {
  ran.count++;
}

/** Throws when the no-op did not run exactly `jobs` times since `before` (a lost or doubled job, not a slow one). */
export function checkRan(before: number, jobs: number, what: string): void {
  const count = ran.count - before;
  if (count !== jobs) throw new Error(`[bench] ${what}: ${jobs} jobs, but the handler ran ${count} times`);
}

/** Parameters of a throughput measurement. */
export interface ThroughputParams {
  /** Jobs in the run. */
  readonly jobs: number;
  /** Worker (or queue) concurrency. */
  readonly concurrency: number;
  /** Items per `enqueueMany` call. */
  readonly batch: number;
  /** Prepared payloads, `jobs` of them. */
  readonly payloads: readonly BenchPayload[];
  /** Hang guard for one run, in ms. */
  readonly timeoutMs: number;
}

/** Parameters of an enqueue measurement. */
export interface EnqueueParams {
  /** Jobs in the run. */
  readonly jobs: number;
  /** Enqueues awaiting at once (1: strictly sequential). */
  readonly inflight: number;
  /** Items per `enqueueMany` call (bulk mode). */
  readonly batch: number;
  /** Prepared payloads. */
  readonly payloads: readonly BenchPayload[];
}

/** Parameters of the fixed-rate latency measurement. */
export interface LatencyParams {
  /** Jobs per second offered. */
  readonly rate: number;
  /** How long jobs are offered, in ms. */
  readonly durationMs: number;
  /** Worker concurrency. */
  readonly concurrency: number;
  /** Hang guard, in ms after the last enqueue. */
  readonly timeoutMs: number;
}

let counter = 0;

/** A queue name no other run in this process uses (valid on every adapter: letters, digits, `-`). */
export function uniqueQueue(what: string): string {
  counter++;
  return `bench-${what}-${process.pid}-${counter}`;
}
