/**
 * Parameters and payload of `processes/worker-modes.ts` (the worker of R6, R4-H8/H7b and R7), and
 * where that entry lives, for `Harness.spawnWorker(params, MODE_WORKER_ENTRY)`.
 */
import { join, resolve } from "node:path";
import type { ChaosPayload, WorkerParams } from "./params.js";

/** The entry file of the mode worker. */
export const MODE_WORKER_ENTRY: string = join(resolve(import.meta.dirname), "worker-modes.ts");

/** The chaos payload plus misbehaviour. */
export interface ModePayload extends ChaosPayload {
  /** How the handler kills its process (R4-H8). */
  readonly crash?: "exit" | "sigkill" | "throw-in-timer" | "unhandled-rejection";
  /** Block the event loop this long before the sleep, ms (R4-H7b). */
  readonly block?: number;
  /** Block only the first execution of this key in the run (a marker file in the ledger directory). */
  readonly blockOnce?: boolean;
}

/** `WorkerParams` plus the process-level options. */
export interface ModeWorkerParams extends Omit<WorkerParams, "ledgerDir" | "wrap"> {
  /** Worker `shutdownTimeout` (the SIGTERM deadline), ms. */
  readonly shutdownTimeoutMs?: number;
  /** Worker `maxDeliveries`. */
  readonly maxDeliveries?: number;
  /** Handlers sleep at most this long, whatever the payload says (the "other worker" of R6 finishes redelivered long jobs quickly). */
  readonly capMs?: number;
  /** Connect, but start consuming only on a `{ type: "go" }` message (R6's second worker, forked ahead of time). */
  readonly startOnGo?: boolean;
  /** R7: sample memory and handles this often, ms. */
  readonly sampleEveryMs?: number;
}
