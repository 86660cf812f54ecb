import * as api from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, InvalidOptionsError, type JobInfo, NonRetryableError, type TracingOptions } from "../src/index.js";
import { parseTraceparent, traceparentOf } from "../src/internal/tracing.js";
import { waitForEvent } from "../src/testing/index.js";
import { fixture, noDelay, rejection } from "./support.js";

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
// The real API module must fit the option's structural types (a compile-time check).
const tracing: TracingOptions = { api, tracerProvider: provider };
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  // Handlers' own spans nest under the attempt's span only through a context manager, as with the SDK.
  api.context.setGlobalContextManager(contextManager.enable());
});
afterAll(() => {
  api.context.disable();
});

/** The spans of one job, by its id. */
function spansOf(id: string): { send: ReadableSpan[]; process: ReadableSpan[] } {
  const all = exporter.getFinishedSpans().filter((s) => s.attributes["messaging.message.id"] === id);
  return { send: all.filter((s) => s.name.startsWith("send ")), process: all.filter((s) => s.name.startsWith("process ")) };
}

describe("tracing", () => {
  it("makes the attempt's span a child of the enqueue's, in one trace, and runs the handler inside it", async () => {
    const f = fixture("trace-parent");
    const client = createClient({ broker: f.broker, tracing });
    const job = f.job<{ n: number }>("traced");
    const seen: { job: JobInfo; active: string | undefined; child: ReadableSpan | undefined }[] = [];
    const tracer = provider.getTracer("test");
    const worker = f.worker({ tracing }).handle(job, async (_p, ctx) => {
      const active = api.trace.getActiveSpan()?.spanContext().spanId;
      await Promise.resolve();
      // A span the handler starts after an await still nests under the attempt.
      const child = tracer.startSpan("handler.child");
      child.end();
      seen.push({ job: ctx.job, active, child: child as unknown as ReadableSpan });
    });
    await worker.start();
    const started = waitForEvent(worker, "job.started");
    const succeeded = waitForEvent(worker, "job.succeeded");
    const { id } = await client.enqueue(job, { n: 1 });
    const [startedEvent] = await Promise.all([started, succeeded]);
    const { send, process } = spansOf(id);
    expect(send).toHaveLength(1);
    expect(process).toHaveLength(1);
    const [s, p] = [send[0] as ReadableSpan, process[0] as ReadableSpan];
    expect(s.kind).toBe(api.SpanKind.PRODUCER);
    expect(p.kind).toBe(api.SpanKind.CONSUMER);
    expect(p.spanContext().traceId).toBe(s.spanContext().traceId);
    expect(p.parentSpanContext?.spanId).toBe(s.spanContext().spanId);
    expect(s.attributes).toMatchObject({
      "messaging.system": "memory",
      "messaging.operation.type": "send",
      "messaging.destination.name": f.queue,
      "messaging.message.id": id,
      "jobs.job.name": job.name,
      "jobs.job.priority": "normal",
    });
    expect(p.attributes).toMatchObject({
      "messaging.operation.type": "process",
      "messaging.destination.name": f.queue,
      "jobs.job.attempt": 1,
      "jobs.job.name": job.name,
      "jobs.outcome": "succeeded",
    });
    expect(p.status.code).toBe(api.SpanStatusCode.UNSET);
    // The handler and the events read the context the job carries: the send span's.
    const carried = { traceparent: traceparentOf(s.spanContext()) };
    expect(seen[0]?.job.trace).toEqual(carried);
    expect(startedEvent.job.trace).toEqual(carried);
    expect(seen[0]?.active).toBe(p.spanContext().spanId);
    expect(seen[0]?.child?.parentSpanContext?.spanId).toBe(p.spanContext().spanId);
  });

  it("makes the enqueue's span a child of the caller's active span, or of the trace given to enqueue", async () => {
    const f = fixture("trace-active");
    const client = createClient({ broker: f.broker, tracing });
    const job = f.job<null>("traced");
    const tracer = provider.getTracer("test");
    const request = tracer.startSpan("request");
    const first = await api.context.with(api.trace.setSpan(api.context.active(), request), () => client.enqueue(job, null));
    request.end();
    const given = { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "vendor=x" };
    const second = await client.enqueue(job, null, { trace: given });
    const [a] = spansOf(first.id).send;
    const [b] = spansOf(second.id).send;
    expect(a?.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    expect(a?.spanContext().traceId).toBe(request.spanContext().traceId);
    expect(b?.spanContext().traceId).toBe("0af7651916cd43dd8448eb211c80319c");
    expect(b?.parentSpanContext?.spanId).toBe("b7ad6b7169203331");
    expect(b?.spanContext().traceState?.serialize()).toBe("vendor=x");
  });

  it("links a retry's span to the first attempt's, in the same trace, with the outcome of each", async () => {
    const f = fixture("trace-retry");
    const client = createClient({ broker: f.broker, tracing });
    const job = f.job<null>("flaky", { maxAttempts: 3, backoff: noDelay });
    const worker = f.worker({ tracing }).handle(job, (_p, ctx) => {
      if (ctx.job.attempt < 3) throw new Error(`attempt ${ctx.job.attempt} fails`);
    });
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded");
    const { id } = await client.enqueue(job, null);
    await succeeded;
    const { send, process } = spansOf(id);
    expect(process.map((s) => s.attributes["jobs.job.attempt"])).toEqual([1, 2, 3]);
    expect(process.map((s) => s.attributes["jobs.outcome"])).toEqual(["retried", "retried", "succeeded"]);
    expect(process.map((s) => s.status.code)).toEqual([api.SpanStatusCode.ERROR, api.SpanStatusCode.ERROR, api.SpanStatusCode.UNSET]);
    const [p1, p2, p3] = process as [ReadableSpan, ReadableSpan, ReadableSpan];
    for (const p of process) {
      expect(p.spanContext().traceId).toBe(send[0]?.spanContext().traceId);
      expect(p.parentSpanContext?.spanId).toBe(send[0]?.spanContext().spanId);
    }
    expect(p1.links).toEqual([]);
    expect(p2.links.map((l) => l.context.spanId)).toEqual([p1.spanContext().spanId]);
    expect(p3.links.map((l) => l.context.spanId)).toEqual([p1.spanContext().spanId]);
    expect(p1.events.find((e) => e.name === "exception")?.attributes?.["exception.message"]).toBe("attempt 1 fails");
  });

  it("gives a dead-lettered attempt an error status, and keeps one trace when the producer had no tracing", async () => {
    const f = fixture("trace-dead");
    const job = f.job<null>("doomed", { maxAttempts: 2, backoff: noDelay });
    const worker = f.worker({ tracing }).handle(job, (_p, ctx) => {
      throw ctx.job.attempt === 1 ? new Error("first") : new NonRetryableError("redis://app:hunter2@db refused");
    });
    await worker.start();
    const dead = waitForEvent(worker, "job.dead-lettered");
    const { id } = await f.client.enqueue(job, null);
    await dead;
    const { send, process } = spansOf(id);
    expect(send).toEqual([]);
    const [p1, p2] = process as [ReadableSpan, ReadableSpan];
    expect(p2.attributes["jobs.outcome"]).toBe("dead-lettered");
    expect(p2.status.code).toBe(api.SpanStatusCode.ERROR);
    // Messages are redacted as in events and logs.
    expect(p2.status.message).toBe("redis://app:***@db refused");
    // No context from the producer: the first attempt began the trace; the retry continues it and links to it.
    expect(p1.parentSpanContext).toBeUndefined();
    expect(p2.spanContext().traceId).toBe(p1.spanContext().traceId);
    expect(p2.links.map((l) => l.context.spanId)).toEqual([p1.spanContext().spanId]);
  });

  it("ends the send span with an error when the enqueue is refused", async () => {
    const f = fixture("trace-refused", { maxPayloadBytes: 1024 });
    const client = createClient({ broker: f.broker, tracing });
    const job = f.job<string>("big");
    const before = exporter.getFinishedSpans().length;
    await rejection(client.enqueue(job, "x".repeat(2000)));
    const spans = exporter.getFinishedSpans().slice(before);
    expect(spans.map((s) => [s.name, s.status.code])).toEqual([[`send ${f.queue}`, api.SpanStatusCode.ERROR]]);
  });

  it("carries the trace given to enqueue to the handler unchanged when tracing is off", async () => {
    const f = fixture("trace-off");
    const job = f.job<null>("plain");
    const seen: JobInfo[] = [];
    const worker = f.worker().handle(job, (_p, ctx) => {
      seen.push(ctx.job);
    });
    await worker.start();
    const succeeded = waitForEvent(worker, "job.succeeded");
    const before = exporter.getFinishedSpans().length;
    const trace = { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" };
    await f.client.enqueue(job, null, { trace });
    expect((await succeeded).job.trace).toEqual(trace);
    expect(seen[0]?.trace).toEqual(trace);
    expect(exporter.getFinishedSpans().length).toBe(before);
  });

  it("rejects a tracing option that is not the API, and a trace that is not W3C strings", async () => {
    const f = fixture("trace-options");
    expect(() => createClient({ broker: f.broker, tracing: {} as TracingOptions })).toThrow(InvalidOptionsError);
    expect(() => f.worker({ tracing: { api: { trace: {} } } as unknown as TracingOptions })).toThrow(/tracing/);
    expect(() => createClient({ broker: f.broker, tracing: { api, tracerProvider: {} as never } })).toThrow(/tracing.tracerProvider/);
    const error = await rejection(f.client.enqueue(f.job<null>("x"), null, { trace: { traceparent: "x", tracestate: 1 as never } }));
    expect(error).toBeInstanceOf(InvalidOptionsError);
  });

  it("parses only valid W3C traceparents", () => {
    expect(parseTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")).toEqual({
      traceId: "0af7651916cd43dd8448eb211c80319c",
      spanId: "b7ad6b7169203331",
      traceFlags: 1,
      isRemote: true,
    });
    expect(parseTraceparent("00-00000000000000000000000000000000-b7ad6b7169203331-01")).toBeUndefined();
    expect(parseTraceparent("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")).toBeUndefined();
    expect(parseTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra")).toBeUndefined();
    expect(parseTraceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra")).toBeDefined();
    expect(parseTraceparent("garbage")).toBeUndefined();
  });
});
