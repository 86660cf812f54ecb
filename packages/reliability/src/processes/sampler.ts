/**
 * R7's per-process sampler: every period, `gc()` (the processes run with --expose-gc), then heap,
 * rss, event-loop delay p99 over the period, active resources and process listeners, as `sample`
 * ledger lines; every process `warning` (MaxListenersExceededWarning, …) as a `warning` line.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { Ledger } from "../ledger.js";

/** Starts sampling into `ledger`; returns a stop function. */
export function startSampler(ledger: Ledger, everyMs: number): () => void {
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  const gc = (globalThis as { gc?: () => void }).gc;
  const onWarning = (w: Error): void => ledger.write("warning", { name: w.name, message: w.message.slice(0, 300) });
  process.on("warning", onWarning);
  const timer = setInterval(() => {
    gc?.();
    const m = process.memoryUsage();
    ledger.write("sample", {
      heapUsed: m.heapUsed,
      rss: m.rss,
      eldP99Ms: eld.percentile(99) / 1e6,
      resources: process.getActiveResourcesInfo().length,
      processListeners: process.eventNames().reduce((n, e) => n + process.listenerCount(e), 0),
    });
    eld.reset();
  }, everyMs);
  return () => {
    clearInterval(timer);
    eld.disable();
    process.off("warning", onWarning);
  };
}
