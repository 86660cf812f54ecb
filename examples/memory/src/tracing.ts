// OpenTelemetry tracing on the in-memory broker (pnpm --filter example-memory tracing): every span
// goes to the console exporter as it ends, then the trace is printed as a tree. --smoke prints only
// the tree and checks it (the smoke script runs it). See docs/concepts/observability.md.
import { ConsoleSpanExporter } from "@opentelemetry/sdk-trace-base";
import { runTracing } from "./tracing/run.js";

const smoke = process.argv.includes("--smoke");
const { spans, tree } = await runTracing(smoke ? [] : [new ConsoleSpanExporter()]);
console.log(tree);
if (smoke) {
  const traces = new Set(spans.map((s) => s.spanContext().traceId)).size;
  const outcomes = spans.filter((s) => s.name === "process emails").map((s) => s.attributes["jobs.outcome"]);
  if (traces !== 1 || outcomes.join() !== "retried,succeeded") {
    console.error(`smoke: expected one trace with attempts retried,succeeded; got ${traces} traces, attempts ${outcomes.join() || "none"}`);
    process.exitCode = 1;
  }
}
