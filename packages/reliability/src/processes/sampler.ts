/**
 * R7's per-process sampler: every period, `gc()` (the processes run with --expose-gc), then heap,
 * rss, event-loop delay p99 over the period, active resources and process listeners, as `sample`
 * ledger lines; every process `warning` (MaxListenersExceededWarning, …) as a `warning` line.
 *
 * Active resources are read every `READING_EVERY_MS` over one churn period (R7b resets every
 * connection that often) and the sample keeps the lowest reading as `resources`, the highest as
 * `resourcesPeak`, and the resource types of both. A reconnect in progress holds the closing and
 * the opening socket (and its timers) for a moment; a leaked handle is there at every reading, so
 * the lowest reading still shows it (docs/reliability.md, R7 handles).
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { config } from "../config.js";
import type { Ledger } from "../ledger.js";

/** How often the active resources are read within one sample's window. */
export const READING_EVERY_MS = 100;

/** Active resources by type, e.g. `{ TCPSocketWrap: 3, Timeout: 5 }`. */
function byType(info: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of info) out[t] = (out[t] ?? 0) + 1;
  return out;
}

/** Starts sampling into `ledger`; returns a stop function. */
export function startSampler(ledger: Ledger, everyMs: number): () => void {
  const windowMs = Math.min(config().processLevel.r7.churnResetEveryMs, everyMs / 2);
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  const gc = (globalThis as { gc?: () => void }).gc;
  const onWarning = (w: Error): void => ledger.write("warning", { name: w.name, message: w.message.slice(0, 300) });
  process.on("warning", onWarning);
  let stopped = false;
  let reading: NodeJS.Timeout | undefined;
  const timer = setInterval(() => {
    gc?.();
    const m = process.memoryUsage();
    const eldP99Ms = eld.percentile(99) / 1e6;
    eld.reset();
    const processListeners = process.eventNames().reduce((n, e) => n + process.listenerCount(e), 0);
    let low = process.getActiveResourcesInfo();
    let high = low;
    let readings = 1;
    const read = (): void => {
      reading = undefined;
      if (stopped) return;
      const now = process.getActiveResourcesInfo();
      readings++;
      if (now.length < low.length) low = now;
      if (now.length > high.length) high = now;
      if (readings * READING_EVERY_MS < windowMs) {
        reading = setTimeout(read, READING_EVERY_MS);
        return;
      }
      ledger.write("sample", {
        heapUsed: m.heapUsed,
        rss: m.rss,
        eldP99Ms,
        resources: low.length,
        resourcesPeak: high.length,
        readings,
        resourceTypes: byType(low),
        resourceTypesPeak: byType(high),
        processListeners,
      });
    };
    reading = setTimeout(read, READING_EVERY_MS);
  }, everyMs);
  return () => {
    stopped = true;
    clearInterval(timer);
    if (reading !== undefined) clearTimeout(reading);
    eld.disable();
    process.off("warning", onWarning);
  };
}
