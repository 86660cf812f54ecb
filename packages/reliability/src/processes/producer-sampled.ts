/**
 * The producer process (`processes/producer.ts`) with R7's sampler running beside it: argv holds
 * the producer's params plus `sampleEveryMs`.
 */
import { join } from "node:path";
import { openLedger } from "../ledger.js";
import type { ProducerParams } from "./params.js";
import { startSampler } from "./sampler.js";

const params = JSON.parse(process.argv[2] ?? "{}") as ProducerParams & { readonly sampleEveryMs?: number };
if (params.sampleEveryMs !== undefined) {
  // Beside the ledgers, not among them: the drain watches the ledgers for quiet, and samples never stop.
  startSampler(openLedger(join(params.ledgerDir, "..", "samples"), "producer"), params.sampleEveryMs);
}
await import("./producer.js");
