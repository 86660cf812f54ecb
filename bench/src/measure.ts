/**
 * Timing primitives: a measurement is a trial set up untimed, then `run()` timed alone, then
 * disposed untimed. Everything here is about measuring, nothing about judging: the harness prints
 * numbers and ratios, never a pass or a fail.
 */

/** One measurable run: set up before the clock starts, torn down after it stops. */
export interface Trial {
  /** The timed part; resolves once every job of the run has been handled. */
  run(): Promise<void>;
  /** Untimed clean-up (close workers and brokers, purge queues). */
  dispose(): Promise<void>;
}

/** Builds a fresh trial; called once per run so runs never share state. */
export type TrialFactory = () => Promise<Trial>;

declare const gc: (() => void) | undefined;

/** Runs a full collection when node was started with `--expose-gc`, so one run's garbage is not billed to the next. */
export function collectGarbage(): void {
  if (typeof gc === "function") gc();
}

/** True when `collectGarbage` really collects. */
export function gcExposed(): boolean {
  return typeof gc === "function";
}

/** Hooks around the timed part of every measured run (the profiler uses them; set-up stays out of the profile). */
export interface RunHooks {
  before(label: string): Promise<void>;
  after(label: string): Promise<void>;
}

let hooks: RunHooks | undefined;

/** Installs hooks called right before and right after every measured `run()`. */
export function setRunHooks(next: RunHooks | undefined): void {
  hooks = next;
}

/** Wall time and process CPU time (all threads, so GC helpers count) of one run. */
export interface Timing {
  readonly wallMs: number;
  readonly cpuMs: number;
}

/**
 * Sets up a trial, times its `run()`, disposes it. CPU time beside wall time shows when other
 * processes competed for the cores (wall well above CPU). `label` names the run for hooks.
 */
export async function timeTrial(factory: TrialFactory, label?: string): Promise<Timing> {
  const trial = await factory();
  collectGarbage();
  if (label !== undefined) await hooks?.before(label);
  const cpu = process.cpuUsage();
  const started = performance.now();
  let timing: Timing;
  try {
    await trial.run();
    const wallMs = performance.now() - started;
    const used = process.cpuUsage(cpu);
    timing = { wallMs, cpuMs: (used.user + used.system) / 1000 };
  } finally {
    if (label !== undefined) await hooks?.after(label);
    await trial.dispose();
  }
  return timing;
}

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Nearest-rank percentile (p in 0..100) of an ascending-sorted list. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

/** Rejects with a clear message when `promise` has not settled within `ms` (a hang guard, not a verdict). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`[bench] ${what}: not finished after ${ms} ms`)), ms);
  });
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

/** A promise with its resolve function outside (Promise.withResolvers is Node 22+). */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Jobs per second for `jobs` jobs in `ms` milliseconds. */
export function rate(jobs: number, ms: number): number {
  return (jobs * 1000) / ms;
}
