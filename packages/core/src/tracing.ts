/**
 * The `tracing` option of `createClient` and `createWorker` (docs/concepts/observability.md): the
 * caller passes `@opentelemetry/api` itself, so core never imports it. The types below are the
 * part of the API core calls, written structurally, so that core's declarations need no
 * `@opentelemetry/api` either: an application without it compiles and loads nothing of it.
 */
import { InvalidOptionsError } from "./errors.js";

/** An OpenTelemetry attribute value, as core sets them. */
export type TracingAttributeValue = string | number | boolean;

/** The span context of `@opentelemetry/api` (the fields core reads and writes). */
export interface TracingSpanContext {
  /** 32 lowercase hex digits. */
  readonly traceId: string;
  /** 16 lowercase hex digits. */
  readonly spanId: string;
  /** W3C trace flags (1: sampled). */
  readonly traceFlags: number;
  /** True for a context that came from another process. */
  readonly isRemote?: boolean;
  /** The vendor trace state, if any. */
  readonly traceState?: { serialize(): string };
}

/** The span of `@opentelemetry/api` (the methods core calls). */
export interface TracingSpan {
  /** Ids of the span. */
  spanContext(): TracingSpanContext;
  /** Sets one attribute. */
  setAttribute(key: string, value: TracingAttributeValue): unknown;
  /** Sets the status (`code` 2: error). */
  setStatus(status: { code: number; message?: string }): unknown;
  /** Records an exception event. */
  recordException(exception: { name?: string; message?: string; stack?: string } | string): void;
  /** Ends the span. */
  end(): void;
}

/** The tracer of `@opentelemetry/api` (the method core calls; core passes `SpanOptions` and a `Context`). */
export interface TracingTracer {
  /** Starts a span; `context` gives its parent. */
  startSpan(name: string, options?: never, context?: never): TracingSpan;
}

/** A tracer provider of the OpenTelemetry SDK (or `trace.getTracerProvider()`). */
export interface TracingTracerProvider {
  /** A named tracer. */
  getTracer(name: string, version?: string): TracingTracer;
}

/** The parts of the `@opentelemetry/api` module core uses: pass the module itself (`import * as api from "@opentelemetry/api"`). */
export interface TracingApi {
  /** `api.trace`. */
  readonly trace: {
    getTracerProvider(): TracingTracerProvider;
    setSpan(context: never, span: never): unknown;
    setSpanContext(context: never, spanContext: never): unknown;
  };
  /** `api.context`. */
  readonly context: {
    active(): unknown;
    with(context: never, fn: never): unknown;
  };
  /** `api.ROOT_CONTEXT`. */
  readonly ROOT_CONTEXT: unknown;
  /** `api.createTraceState` (API 1.1 and later). */
  readonly createTraceState?: (raw?: string) => unknown;
}

/** The `tracing` option of `createClient` and `createWorker`. */
export interface TracingOptions {
  /** The `@opentelemetry/api` module: `import * as api from "@opentelemetry/api"`. */
  readonly api: TracingApi;
  /** Where spans go. @default the global tracer provider (`api.trace.getTracerProvider()`), as the SDK registers it */
  readonly tracerProvider?: TracingTracerProvider;
}

/** Checks the `tracing` option, naming the field. */
export function assertTracing(tracing: unknown): asserts tracing is TracingOptions | undefined {
  if (tracing === undefined) return;
  const api = (tracing as { api?: Partial<TracingApi> } | null)?.api;
  if (
    typeof api?.trace?.getTracerProvider !== "function" ||
    typeof api.trace.setSpan !== "function" ||
    typeof api.trace.setSpanContext !== "function" ||
    typeof api.context?.with !== "function" ||
    api.ROOT_CONTEXT === undefined
  ) {
    throw new InvalidOptionsError(
      "tracing",
      'expected { api } with the "@opentelemetry/api" module (import * as api from "@opentelemetry/api")',
    );
  }
  const provider = (tracing as { tracerProvider?: unknown }).tracerProvider;
  if (provider !== undefined && typeof (provider as TracingTracerProvider | null)?.getTracer !== "function") {
    throw new InvalidOptionsError("tracing.tracerProvider", "expected a tracer provider (getTracer)");
  }
}
