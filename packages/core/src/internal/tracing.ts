/**
 * OpenTelemetry tracing of enqueues and attempts, through the API the caller passed
 * (`tracing: { api }`, see src/tracing.ts). Core's only contact with OpenTelemetry: the client
 * calls `send`/`sent` around a publish, the worker `process`, `run` and `end` around an attempt,
 * and settlement `retryTrace` on the next attempt's envelope.
 *
 * The trace context travels in the envelope's `trace` field as W3C `traceparent`/`tracestate`,
 * written here from the span's ids (not through the global propagator: the field is W3C by
 * definition, and a B3 or Jaeger propagator would write other keys). The first attempt's
 * `process` span rides along as `trace.firstAttempt`, so that retries link to it.
 */
import type { TraceContext } from "../envelope.js";
import { serializeError } from "../errors.js";
import type { Priority } from "../priority.js";
import type { TracingAttributeValue, TracingOptions, TracingSpan, TracingSpanContext } from "../tracing.js";

/** OpenTelemetry's SpanKind and SpanStatusCode values (fixed by the specification). */
const PRODUCER = 3;
const CONSUMER = 4;
const ERROR = 2;

/** The instrumentation scope of every span. */
export const TRACER_NAME = "@jobs/core";

/** What became of an attempt, as its `process` span says (`jobs.outcome`). */
export type AttemptOutcome = "succeeded" | "retried" | "dead-lettered" | "cancelled" | "released";

/** The fields of a job its spans describe. */
interface SpannedJob {
  readonly id: string;
  readonly name: string;
  readonly queue: string;
  readonly priority: Priority;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly trace?: TraceContext | undefined;
}

/** The API's functions core calls, with the types it calls them with. */
interface CallableApi {
  readonly trace: {
    setSpan(context: unknown, span: TracingSpan): unknown;
    setSpanContext(context: unknown, spanContext: TracingSpanContext): unknown;
  };
  readonly context: {
    active(): unknown;
    with<R>(context: unknown, fn: () => R): R;
  };
  readonly ROOT_CONTEXT: unknown;
  readonly createTraceState?: (raw?: string) => unknown;
}

/** The tracer's method, with what core passes it (`SpanOptions`, a `Context`). */
interface CallableTracer {
  startSpan(
    name: string,
    options: { kind: number; attributes: Record<string, TracingAttributeValue>; links?: { context: TracingSpanContext }[] },
    context: unknown,
  ): TracingSpan;
}

/** Messaging systems with a semantic-convention name of their own; other brokers go by their adapter's name. */
const SYSTEMS: Readonly<Record<string, string>> = { sqs: "aws_sqs" };

export class Tracing {
  readonly #api: CallableApi;
  readonly #tracer: CallableTracer;
  readonly #system: string;

  constructor(options: TracingOptions, brokerName: string) {
    this.#api = options.api as unknown as CallableApi;
    const provider = options.tracerProvider ?? options.api.trace.getTracerProvider();
    this.#tracer = provider.getTracer(TRACER_NAME) as unknown as CallableTracer;
    this.#system = SYSTEMS[brokerName] ?? brokerName;
  }

  /**
   * Starts the `send` span of an enqueue, a child of the caller's `trace` if given, else of the
   * active context; returns it with the trace context the envelope carries.
   */
  send(name: string, queue: string, given: TraceContext | undefined): { span: TracingSpan; trace: TraceContext } {
    const api = this.#api;
    const parent = given === undefined ? api.context.active() : this.#remote(given.traceparent, given.tracestate);
    const span = this.#tracer.startSpan(
      `send ${queue}`,
      {
        kind: PRODUCER,
        attributes: {
          "messaging.system": this.#system,
          "messaging.operation.type": "send",
          "messaging.operation.name": "send",
          "messaging.destination.name": queue,
          "jobs.job.name": name,
        },
      },
      parent,
    );
    return { span, trace: contextOf(span.spanContext()) };
  }

  /** Ends a `send` span: the job's id and priority, whether it was a duplicate, or the error. */
  sent(span: TracingSpan, job: SpannedJob | undefined, duplicate: boolean, error?: unknown): void {
    if (job !== undefined) {
      span.setAttribute("messaging.message.id", job.id);
      span.setAttribute("jobs.job.priority", job.priority);
      span.setAttribute("jobs.job.max_attempts", job.maxAttempts);
      if (duplicate) span.setAttribute("jobs.duplicate", true);
    }
    if (error !== undefined) failed(span, error);
    span.end();
  }

  /**
   * Starts the `process` span of an attempt: a child of the `send` span the envelope carries (one
   * trace from the producer's request to every attempt), linked to the first attempt's span on a retry.
   */
  process(job: SpannedJob): TracingSpan {
    const trace = job.trace;
    const parent = trace === undefined ? this.#api.ROOT_CONTEXT : this.#remote(trace.traceparent, trace.tracestate);
    const attributes: Record<string, TracingAttributeValue> = {
      "messaging.system": this.#system,
      "messaging.operation.type": "process",
      "messaging.operation.name": "process",
      "messaging.destination.name": job.queue,
      "messaging.message.id": job.id,
      "jobs.job.name": job.name,
      "jobs.job.attempt": job.attempt,
      "jobs.job.max_attempts": job.maxAttempts,
      "jobs.job.priority": job.priority,
    };
    const first = trace?.firstAttempt === undefined ? undefined : parseTraceparent(trace.firstAttempt);
    const options = first === undefined ? { kind: CONSUMER, attributes } : { kind: CONSUMER, attributes, links: [{ context: first }] };
    return this.#tracer.startSpan(`process ${job.queue}`, options, parent);
  }

  /** Calls `fn` with `span` active, so that the handler's own spans nest under it. */
  run<R>(span: TracingSpan, fn: () => R): R {
    const api = this.#api;
    return api.context.with(api.trace.setSpan(api.context.active(), span), fn);
  }

  /** The context of a remote span, or the root context when `traceparent` is not valid W3C. */
  #remote(traceparent: string, tracestate: string | undefined): unknown {
    const api = this.#api;
    const parsed = parseTraceparent(traceparent);
    if (parsed === undefined) return api.ROOT_CONTEXT;
    const state = tracestate === undefined || api.createTraceState === undefined ? undefined : api.createTraceState(tracestate);
    const spanContext = state === undefined ? parsed : { ...parsed, traceState: state as TracingSpanContext["traceState"] };
    return api.trace.setSpanContext(api.ROOT_CONTEXT, spanContext as TracingSpanContext);
  }
}

/** Ends a `process` span with the attempt's outcome, recording the error of a failed one. */
export function endAttempt(span: TracingSpan, outcome: AttemptOutcome, error?: unknown): void {
  span.setAttribute("jobs.outcome", outcome);
  if (error !== undefined) failed(span, error);
  span.end();
}

/** The trace context the next attempt's envelope carries: the first attempt's span rides along for the link. */
export function retryTrace(trace: TraceContext | undefined, span: TracingSpan): TraceContext {
  if (trace?.firstAttempt !== undefined) return trace;
  const first = traceparentOf(span.spanContext());
  // No producer context: the first attempt began the trace, and later attempts continue it.
  if (trace === undefined) return { traceparent: first, firstAttempt: first };
  return { ...trace, firstAttempt: first };
}

function failed(span: TracingSpan, error: unknown): void {
  // Serialized first: messages and stacks are redacted as in events and logs.
  const serialized = serializeError(error);
  const exception: { name: string; message: string; stack?: string } = { name: serialized.name, message: serialized.message };
  if (serialized.stack !== undefined) exception.stack = serialized.stack;
  span.recordException(exception);
  span.setStatus({ code: ERROR, message: serialized.message });
}

/** A span context as W3C trace context. */
function contextOf(sc: TracingSpanContext): TraceContext {
  const traceparent = traceparentOf(sc);
  const tracestate = sc.traceState?.serialize();
  return tracestate === undefined || tracestate === "" ? { traceparent } : { traceparent, tracestate };
}

/** `00-<trace id>-<span id>-<flags>`. */
export function traceparentOf(sc: TracingSpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, "0")}`;
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(?:-|$)/;
const INVALID_TRACE = "00000000000000000000000000000000";
const INVALID_SPAN = "0000000000000000";

/** A W3C `traceparent` as a remote span context; undefined when it is not one (version ff, zero ids, bad syntax). */
export function parseTraceparent(traceparent: string): TracingSpanContext | undefined {
  // One test, then slices at the fixed offsets: capture groups cost more than the rest of the parse (per attempt).
  if (!TRACEPARENT.test(traceparent)) return undefined;
  const version = traceparent.slice(0, 2);
  const traceId = traceparent.slice(3, 35);
  const spanId = traceparent.slice(36, 52);
  if (version === "ff" || traceId === INVALID_TRACE || spanId === INVALID_SPAN) return undefined;
  // Version 00 has exactly four fields; later versions may add more after a dash.
  if (version === "00" && traceparent.length !== 55) return undefined;
  return { traceId, spanId, traceFlags: Number.parseInt(traceparent.slice(53, 55), 16), isRemote: true };
}
