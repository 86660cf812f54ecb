import { SpanKind } from "@opentelemetry/api";
import { expect, it } from "vitest";
import { runTracing } from "../src/tracing/run.js";

it("runs the tracing example: one trace from the request to both attempts, the handler's spans nested, the retry linked", async () => {
  const { spans, tree } = await runTracing();
  expect(new Set(spans.map((s) => s.spanContext().traceId)).size).toBe(1);
  const byName = (name: string) => spans.filter((s) => s.name === name);
  const [request] = byName("POST /checkout");
  const [send] = byName("send emails");
  const attempts = byName("process emails");
  expect(send?.kind).toBe(SpanKind.PRODUCER);
  expect(send?.parentSpanContext?.spanId).toBe(request?.spanContext().spanId);
  expect(attempts.map((a) => a.parentSpanContext?.spanId)).toEqual([send?.spanContext().spanId, send?.spanContext().spanId]);
  expect(attempts.map((a) => a.attributes["jobs.outcome"])).toEqual(["retried", "succeeded"]);
  expect(attempts[1]?.links.map((l) => l.context.spanId)).toEqual([attempts[0]?.spanContext().spanId]);
  const smtp = byName("smtp.send");
  expect(smtp.map((s) => s.parentSpanContext?.spanId)).toEqual(attempts.map((a) => a.spanContext().spanId));
  expect(tree.split("\n").slice(1)).toEqual([
    "#1 POST /checkout [INTERNAL]",
    "  #2 send emails [PRODUCER]",
    "    #3 process emails [CONSUMER] attempt 1, retried, error: smtp: 451 try again later",
    "      #4 smtp.send [INTERNAL] error: smtp: 451 try again later",
    "    #5 process emails [CONSUMER] attempt 2, succeeded, link → #3",
    "      #6 smtp.send [INTERNAL]",
  ]);
});
