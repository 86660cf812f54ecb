/**
 * Job cases on OpenTelemetry tracing (the `tracing` option of client and worker): the trace
 * context travels in the envelope, which core owns, so every broker carries it the same way.
 * Each case has a tracer provider of its own with an in-memory exporter: nothing global is set.
 */

import { NonRetryableError, type TracingOptions } from "@jobs/core";
import * as api from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { expect, it } from "vitest";
import { group } from "../internal/fixture.js";
import type { Counted } from "../internal/jobs.js";
import type { ConformanceOptions } from "../options.js";

/** A tracing option whose spans end up in `spans()`, and those of one job by its id. */
function traced(): { tracing: TracingOptions; spans(id: string): { send: ReadableSpan[]; process: ReadableSpan[] } } {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  return {
    tracing: { api, tracerProvider },
    spans(id) {
      const all = exporter.getFinishedSpans().filter((s) => s.attributes["messaging.message.id"] === id);
      return { send: all.filter((s) => s.name.startsWith("send ")), process: all.filter((s) => s.name.startsWith("process ")) };
    },
  };
}

/** Tracing: one trace from enqueue to every attempt, retries linked to the first attempt, failures in error. */
export function jobSemanticsTracing(options: ConformanceOptions): void {
  group(options, "jobs: tracing", ({ t, jobCase }) => {
    it(
      "makes each attempt's process span a child of the enqueue's send span, in its trace, and gives the handler that context",
      async () => {
        const { tracing, spans } = traced();
        const f = await jobCase("trace", { client: { tracing } });
        const job = f.job<Counted>("conformance.traced");
        const carried: unknown[] = [];
        const worker = await f.run(
          job,
          (_p, { job }) => {
            carried.push(job.trace);
          },
          { tracing },
        );
        const done = worker.next("job.succeeded", t.wait);
        const { id } = await f.client.enqueue(job, { n: 1 });
        const succeeded = await done;
        const { send, process } = spans(id);
        expect(send).toHaveLength(1);
        expect(process).toHaveLength(1);
        const [s, p] = [send[0] as ReadableSpan, process[0] as ReadableSpan];
        expect(p.spanContext().traceId).toBe(s.spanContext().traceId);
        expect(p.parentSpanContext?.spanId).toBe(s.spanContext().spanId);
        expect(p.kind).toBe(api.SpanKind.CONSUMER);
        expect(p.attributes).toMatchObject({ "jobs.job.attempt": 1, "jobs.outcome": "succeeded", "messaging.destination.name": f.q });
        const traceparent = `00-${s.spanContext().traceId}-${s.spanContext().spanId}-01`;
        expect(carried).toEqual([{ traceparent }]);
        expect(succeeded.job.trace).toEqual({ traceparent });
      },
      t.testTimeout,
    );

    it(
      "makes a retry a second process span in the same trace, linked to the first attempt's",
      async () => {
        const { tracing, spans } = traced();
        const f = await jobCase("trace-retry", { client: { tracing } });
        const job = f.job<Counted>("conformance.traced-retry", { maxAttempts: 2, backoff: { type: "fixed", delay: t.ms(20) } });
        const worker = await f.run(
          job,
          (_p, { job }) => {
            if (job.attempt === 1) throw new Error("first attempt fails");
          },
          { tracing },
        );
        const done = worker.next("job.succeeded", t.wait);
        const { id } = await f.client.enqueue(job, { n: 1 });
        await done;
        const { send, process } = spans(id);
        expect(process.map((s) => [s.attributes["jobs.job.attempt"], s.attributes["jobs.outcome"]])).toEqual([
          [1, "retried"],
          [2, "succeeded"],
        ]);
        const [p1, p2] = process as [ReadableSpan, ReadableSpan];
        expect(p1.status.code).toBe(api.SpanStatusCode.ERROR);
        expect(p2.spanContext().traceId).toBe(send[0]?.spanContext().traceId);
        expect(p2.parentSpanContext?.spanId).toBe(send[0]?.spanContext().spanId);
        expect(p2.links.map((l) => l.context.spanId)).toEqual([p1.spanContext().spanId]);
      },
      t.testTimeout,
    );

    it(
      "gives a dead-lettered job's process span an error status with the error recorded",
      async () => {
        const { tracing, spans } = traced();
        const f = await jobCase("trace-dead", { client: { tracing } });
        const job = f.job<Counted>("conformance.traced-dead");
        const worker = await f.run(
          job,
          () => {
            throw new NonRetryableError("no way");
          },
          { tracing },
        );
        const dead = worker.next("job.dead-lettered", t.wait);
        const { id } = await f.client.enqueue(job, { n: 1 });
        await dead;
        const [p] = spans(id).process;
        expect(p?.attributes["jobs.outcome"]).toBe("dead-lettered");
        expect(p?.status).toEqual({ code: api.SpanStatusCode.ERROR, message: "no way" });
        expect(p?.events.map((e) => [e.name, e.attributes?.["exception.message"]])).toEqual([["exception", "no way"]]);
      },
      t.testTimeout,
    );
  });
}
