/**
 * What the orchestrator (a test) tells the processes it forks, and what they report back over IPC.
 * Everything here is plain data: it travels as JSON in `argv` and IPC messages.
 */
import { defineJob, type JobDefinition } from "@jobs/core";
import type { BrokerSpec, StoreSpec } from "../adapters.js";

/** The job every chaos scenario runs: `k` is the scenario's own key (the ledger id), `ms` the handler's sleep. */
export interface ChaosPayload {
  readonly k: string;
  readonly ms: number;
  /** Busy CPU time after the sleep, ms (1 % of R1's jobs). */
  readonly cpu?: number;
}

/** The definition of the chaos job on `queue` (the same in producers and workers). */
export function chaosJob(queue: string): JobDefinition<ChaosPayload, ChaosPayload> {
  return defineJob<ChaosPayload>({ name: "reliability.chaos", queue, maxAttempts: 25 });
}

/** Parameters of a worker process (`processes/worker.ts`). */
export interface WorkerParams {
  readonly spec: BrokerSpec;
  /** With a job store (issue 15): the worker claims and finishes records in it. */
  readonly store?: StoreSpec;
  /** Adapter options on top of the suite's timings. */
  readonly brokerOptions?: Readonly<Record<string, unknown>>;
  readonly ledgerDir: string;
  readonly queue: string;
  readonly concurrency: number;
  readonly prefetch: number;
  readonly leaseMs: number;
  /** A deliberately broken broker wrapper (negative controls, R11). */
  readonly wrap?: "ackBeforeHandle";
  /** R1: a `recv` line per delivery (key and delivery count) as it arrives (`recordReceives`). */
  readonly recordReceives?: boolean;
}

/** Parameters of a producer process (`processes/producer.ts`). */
export interface ProducerParams {
  readonly spec: BrokerSpec;
  /** With a job store (issue 15): every enqueue writes its record first. */
  readonly store?: StoreSpec;
  readonly brokerOptions?: Readonly<Record<string, unknown>>;
  readonly ledgerDir: string;
  readonly queue: string;
  /** Keys are `<keyPrefix><n>`. */
  readonly keyPrefix: string;
  /** Enqueue this many jobs, then finish (unless `durationMs` ends it first). */
  readonly count: number;
  /** Stop starting new enqueues after this long, ms. */
  readonly durationMs?: number;
  /** Steady rate (enqueues started per second); full speed when absent. */
  readonly ratePerSec?: number;
  /** Most enqueues pending at once. */
  readonly maxInFlight: number;
  /** Handler sleep range [min, max) in ms. */
  readonly handlerMs: readonly [number, number];
  /** Fraction of jobs that also burn `cpuMs` of CPU. */
  readonly cpuFraction: number;
  readonly cpuMs: number;
  /** Seed of the payloads' durations. */
  readonly seed: number;
}

/** Messages from a forked process to the orchestrator. */
export type ChildMessage =
  | { readonly type: "ready"; readonly t: number; readonly port?: number }
  | { readonly type: "ack"; readonly id: number; readonly t: number; readonly connections: number; readonly error?: string }
  | { readonly type: "started"; readonly t: number; readonly count: number }
  | { readonly type: "done"; readonly t: number; readonly keys: readonly string[] }
  | { readonly type: "accepted"; readonly t: number; readonly keys: readonly string[]; readonly rejected: number }
  | { readonly type: "finished"; readonly t: number }
  | { readonly type: "fatal"; readonly t: number; readonly message: string };

/** Parameters of a fault proxy process (`processes/proxy.ts`). */
export interface ProxyParams {
  readonly target: { readonly host: string; readonly port: number };
  /** Port to listen on; a free one when absent. */
  readonly port?: number;
}

/** One command to a fault proxy process; it answers with an `ack` of the same id. */
export type ProxyCommand =
  | {
      readonly type: "mode";
      readonly id: number;
      readonly mode: "pass" | "pause" | "pause-upstream" | "pause-downstream" | "reset" | "refuse";
    }
  | { readonly type: "latency"; readonly id: number; readonly ms: number; readonly jitterMs: number }
  | { readonly type: "reset-connections"; readonly id: number };

/** Messages from the orchestrator to a forked process. */
export type ParentMessage = { readonly type: "close" } | { readonly type: "stop" } | ProxyCommand;
