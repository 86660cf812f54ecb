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
 *
 * Under churn the orchestrator tells each process when it reset the connections (a
 * `reset-notice` message with the reset's start and end). `resources` then only counts readings
 * taken away from a reset (from `NEAR_RESET_BEFORE_MS` before it to `NEAR_RESET_AFTER_MS` after
 * it): a reset also takes handles away for a moment, the requests it cut and their timers, until
 * they are retried (SQS: five long polls, one per priority level, each a socket and its SDK
 * timers, gone for 100–300 ms after every reset), and whether one 100-ms reading of a 2-s
 * window fell into that gap decided the lowest reading. Every reading, the ones near a reset
 * included, is still reported: `resourcesAny` is the lowest of them all. A leak is in every
 * reading, near a reset or not.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { config } from "../config.js";
import type { Ledger } from "../ledger.js";

/** How often the active resources are read within one sample's window. */
export const READING_EVERY_MS = 100;
/** Readings this long before a reset notice's start are near the reset (the notice's own delay included). */
export const NEAR_RESET_BEFORE_MS = 200;
/** Readings this long after a reset notice's end are near the reset (requests cut and not yet retried). */
export const NEAR_RESET_AFTER_MS = 600;

/** The orchestrator's messages around a reset of the proxied connections (R7b): one before it (`to` = `from`), one once the proxy acknowledged it. */
export interface ResetNotice {
  readonly type: "reset-notice";
  /** When the reset command was sent and when the proxy acknowledged it (ms since the epoch). */
  readonly from: number;
  readonly to: number;
}

/** Active resources by type, e.g. `{ TCPSocketWrap: 3, Timeout: 5 }`. */
function byType(info: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of info) out[t] = (out[t] ?? 0) + 1;
  return out;
}

/** One reading of the active resources (`process.getActiveResourcesInfo()`) at `t`. */
export interface Reading {
  readonly t: number;
  readonly info: readonly string[];
}

/**
 * One sample's window of readings: `low` is the lowest reading away from every reset (all
 * readings if none is), `lowAny` the lowest of all, `high` the highest of all; `away` counts the
 * readings away from a reset.
 */
export function summariseWindow(
  readings: readonly Reading[],
  resets: readonly ResetNotice[],
): { readonly low: readonly string[]; readonly lowAny: readonly string[]; readonly high: readonly string[]; readonly away: number } {
  if (readings.length === 0) throw new Error("[reliability] a window without readings");
  const near = (t: number): boolean => resets.some((r) => t >= r.from - NEAR_RESET_BEFORE_MS && t <= r.to + NEAR_RESET_AFTER_MS);
  const lowest = (list: readonly Reading[]): readonly string[] =>
    list.reduce((a, b) => (b.info.length < a.length ? b.info : a), (list[0] as Reading).info);
  const away = readings.filter((r) => !near(r.t));
  return {
    low: lowest(away.length > 0 ? away : readings),
    lowAny: lowest(readings),
    high: readings.reduce((a, b) => (b.info.length > a.length ? b.info : a), (readings[0] as Reading).info),
    away: away.length,
  };
}

/** Starts sampling into `ledger`; returns a stop function. */
export function startSampler(ledger: Ledger, everyMs: number): () => void {
  const windowMs = Math.min(config().processLevel.r7.churnResetEveryMs, everyMs / 2);
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  const gc = (globalThis as { gc?: () => void }).gc;
  const onWarning = (w: Error): void => ledger.write("warning", { name: w.name, message: w.message.slice(0, 300) });
  process.on("warning", onWarning);
  const resets: ResetNotice[] = [];
  const onMessage = (message: unknown): void => {
    const m = message as Partial<ResetNotice> | null;
    if (m?.type === "reset-notice" && typeof m.from === "number" && typeof m.to === "number")
      resets.push({ type: m.type, from: m.from, to: m.to });
  };
  process.on("message", onMessage);
  let stopped = false;
  let reading: NodeJS.Timeout | undefined;
  const timer = setInterval(() => {
    gc?.();
    const m = process.memoryUsage();
    const eldP99Ms = eld.percentile(99) / 1e6;
    eld.reset();
    const processListeners = process.eventNames().reduce((n, e) => n + process.listenerCount(e), 0);
    const readings: Reading[] = [{ t: Date.now(), info: process.getActiveResourcesInfo() }];
    const read = (): void => {
      reading = undefined;
      if (stopped) return;
      readings.push({ t: Date.now(), info: process.getActiveResourcesInfo() });
      if (readings.length * READING_EVERY_MS < windowMs) {
        reading = setTimeout(read, READING_EVERY_MS);
        return;
      }
      const w = summariseWindow(readings, resets);
      // Notices older than this window cannot touch the next one.
      const windowStart = (readings[0] as Reading).t;
      for (let i = resets.length - 1; i >= 0; i--)
        if ((resets[i] as ResetNotice).to + NEAR_RESET_AFTER_MS < windowStart) resets.splice(i, 1);
      ledger.write("sample", {
        heapUsed: m.heapUsed,
        rss: m.rss,
        eldP99Ms,
        resources: w.low.length,
        resourcesAny: w.lowAny.length,
        resourcesPeak: w.high.length,
        readings: readings.length,
        readingsAwayFromResets: w.away,
        resourceTypes: byType(w.low),
        resourceTypesPeak: byType(w.high),
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
    process.off("message", onMessage);
  };
}
