/**
 * The producer process (`processes/producer.ts`) with R7's sampler running beside it: argv holds
 * the producer's params plus `sampleEveryMs`.
 */
import { openLedger } from "../ledger.js";
import type { ProducerParams } from "./params.js";
import { startSampler } from "./sampler.js";

const params = JSON.parse(process.argv[2] ?? "{}") as ProducerParams & { readonly sampleEveryMs?: number };
if (params.sampleEveryMs !== undefined) {
  // Its own file: the producer's ledger is opened by producer.ts.
  startSampler(openLedger(params.ledgerDir, "sampler", `sampler-producer-${process.pid}.ndjson`), params.sampleEveryMs);
}
await import("./producer.js");
