/**
 * Helpers of the process-level cases run step by step by their tests (R6, R4-H8/H7b, R9-E4):
 * a producer in the test process that writes the same ledger lines as the producer process, and
 * counts of handler starts per forked worker from its IPC messages.
 */
import { type Client, createClient, type EnqueueOptions, JobsError } from "@jobs/core";
import { type BrokerSpec, createBroker } from "./adapters.js";
import type { Harness, Proc } from "./harness.js";
import { openLedger } from "./ledger.js";
import type { ChildMessage } from "./processes/params.js";
import { chaosJob } from "./processes/params.js";
import type { ModePayload } from "./processes/worker-modes-params.js";

/** A producer in the test process: `intent`, then `accepted` or `rejected{ambiguous, code}` lines in the harness's ledger directory. */
export interface TestProducer {
  readonly client: Client;
  /** Enqueues one chaos job with key `payload.k`; resolves whether it was accepted. */
  enqueue(payload: ModePayload, options?: EnqueueOptions): Promise<boolean>;
  close(): Promise<void>;
}

/** Opens a producer on `spec` writing to `h`'s ledgers. */
export function testProducer(
  h: Harness,
  spec: BrokerSpec,
  queue: string,
  brokerOptions: Readonly<Record<string, unknown>> = {},
): TestProducer {
  const broker = createBroker(spec, brokerOptions);
  const ledger = openLedger(h.ledgerDir, "producer", `producer-test-${process.pid}-${Date.now()}.ndjson`);
  broker.on("disconnected", (e) => ledger.write("disconnected", { error: e.error?.message }));
  broker.on("reconnected", () => ledger.write("reconnected"));
  broker.on("error", () => {});
  const client = createClient({ broker });
  const job = chaosJob(queue);
  return {
    client,
    enqueue(payload, options = {}) {
      ledger.write("intent", { id: payload.k });
      return client.enqueue(job, payload, { ...options, metadata: { k: payload.k } }).then(
        (enqueued) => {
          ledger.write("accepted", { id: payload.k, jobId: enqueued.id });
          return true;
        },
        (error: unknown) => {
          const code = JobsError.isInstance(error) ? error.code : "not-a-jobs-error";
          ledger.write("rejected", {
            id: payload.k,
            ambiguous: code === "enqueue-outcome-unknown",
            code,
            error: (error as Error)?.message,
          });
          return false;
        },
      );
    },
    async close() {
      await broker.close().catch(() => {});
      ledger.close();
    },
  };
}

/** Handler starts a forked mode worker reported (its `started` messages carry the running count). Poll it: the harness re-checks its own conditions before this listener runs. */
export function startCounter(proc: Proc): { readonly count: number } {
  const state = { count: 0 };
  proc.child.on("message", (m: ChildMessage) => {
    if (m.type === "started") state.count = Math.max(state.count, m.count);
  });
  return state;
}

/** Polls `probe` every 100 ms until it holds (a broker state, not an event); rejects after `timeoutMs`. */
export async function poll(probe: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > end) throw new Error(`[reliability] timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
