// OpenTelemetry tracing on the in-memory broker: a request span enqueues a job, the worker's attempts
// are `process` spans in the same trace, the handler's own span nests under its attempt, and the
// retry links to the first attempt. Spans go to the exporters given, and come back as a printed tree.

import { createClient, createWorker, defineJob } from "@jobs/core";
import * as api from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-base";
import { connect } from "../broker.js";

const sendReceipt = defineJob<{ order: string; to: string }>({
  name: "receipt.send",
  queue: "emails",
  maxAttempts: 3,
  backoff: { type: "fixed", delay: "10ms" },
});

/** What a run traced: every span, and the trace drawn as a tree. */
export interface TracingRun {
  readonly spans: readonly ReadableSpan[];
  readonly tree: string;
}

/** Runs one traced job (its first attempt fails) and returns its spans; `exporters` get them too (the console, say). */
export async function runTracing(exporters: readonly SpanExporter[] = []): Promise<TracingRun> {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    spanProcessors: [memory, ...exporters].map((exporter) => new SimpleSpanProcessor(exporter)),
  });
  // With the SDK's NodeSDK this is one `sdk.start()`; here by hand: spans nest across awaits through the context manager.
  const contextManager = new AsyncLocalStorageContextManager().enable();
  api.context.setGlobalContextManager(contextManager);
  api.trace.setGlobalTracerProvider(provider);
  const tracing = { api };
  const tracer = api.trace.getTracer("example");

  const broker = connect();
  const worker = createWorker({ broker, tracing, concurrency: 1 }).handle(sendReceipt, async ({ to }, { job }) => {
    // The handler's own span is a child of this attempt's `process` span.
    await tracer.startActiveSpan("smtp.send", async (span) => {
      span.setAttribute("smtp.to_domain", to.split("@")[1] ?? "");
      try {
        if (job.attempt === 1) throw new Error("smtp: 451 try again later");
      } catch (error) {
        span.setStatus({ code: api.SpanStatusCode.ERROR, message: (error as Error).message });
        throw error;
      } finally {
        span.end();
      }
    });
  });
  await worker.start();
  const done = new Promise((resolve) => worker.on("job.succeeded", resolve));
  const client = createClient({ broker, tracing });
  // The web request: its span is the parent of the enqueue's `send` span, and so the root of the trace.
  await tracer.startActiveSpan("POST /checkout", async (request) => {
    await client.enqueue(sendReceipt, { order: "A-1001", to: "ada@example.com" });
    request.end();
  });
  await done;
  await worker.close();
  await broker.close();
  // Read before the shutdown, which empties the in-memory exporter.
  const spans = memory.getFinishedSpans();
  await provider.shutdown();
  api.trace.disable();
  api.context.disable();
  return { spans, tree: drawTree(spans) };
}

/** The spans as an indented tree (children under their parent, by start time), numbered in that order, with each attempt's outcome and links. */
export function drawTree(spans: readonly ReadableSpan[]): string {
  const byStart = [...spans].sort((a, b) => hrNanos(a.startTime) - hrNanos(b.startTime));
  const ordered: { span: ReadableSpan; depth: number }[] = [];
  const walk = (parent: string | undefined, depth: number): void => {
    for (const span of byStart.filter((s) => s.parentSpanContext?.spanId === parent)) {
      ordered.push({ span, depth });
      walk(span.spanContext().spanId, depth + 1);
    }
  };
  walk(undefined, 0);
  const ids = new Map(ordered.map(({ span }, i) => [span.spanContext().spanId, `#${i + 1}`]));
  const lines = ordered.map(({ span, depth }) => {
    const notes: string[] = [];
    const outcome = span.attributes["jobs.outcome"];
    if (span.attributes["jobs.job.attempt"] !== undefined) notes.push(`attempt ${span.attributes["jobs.job.attempt"]}`);
    if (outcome !== undefined) notes.push(String(outcome));
    if (span.status.code === api.SpanStatusCode.ERROR) notes.push(`error: ${span.status.message}`);
    for (const link of span.links) notes.push(`link → ${ids.get(link.context.spanId) ?? link.context.spanId}`);
    const label = `${"  ".repeat(depth)}${ids.get(span.spanContext().spanId)} ${span.name} [${api.SpanKind[span.kind]}]`;
    return notes.length === 0 ? label : `${label} ${notes.join(", ")}`;
  });
  const traceIds = new Set(spans.map((s) => s.spanContext().traceId));
  return [`trace ${[...traceIds].join(", ")}`, ...lines].join("\n");
}

function hrNanos([seconds, nanos]: readonly [number, number]): number {
  return seconds * 1e9 + nanos;
}
