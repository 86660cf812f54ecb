/**
 * Reports (RELIABILITY.md d.4): every test writes one JSON file per adapter under
 * `.tmp/reports/<run-id>/`, with its figures, its bars and its verdict; `bin/run.ts` prints one
 * summary table from them and ends with the plain line `N passed, N failed`.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

/** One pass bar: a named figure, its limit, and whether it held. */
export interface Bar {
  readonly name: string;
  readonly value: number | string | boolean;
  readonly limit: string;
  readonly ok: boolean;
}

/** What one test measured on one adapter. */
export interface Report {
  /** Test id, e.g. "R1" or "R5-P3". */
  readonly test: string;
  readonly adapter: string;
  /** PRNG seed of the schedule, so a failure can be replayed (0 when nothing was random). */
  readonly seed: number;
  readonly config?: Readonly<Record<string, unknown>>;
  readonly figures: Readonly<Record<string, unknown>>;
  readonly bars: readonly Bar[];
  readonly faults?: readonly unknown[];
  /** "pass" when every bar held; "skip" with `reason` when the case does not apply to the adapter. */
  readonly verdict: "pass" | "fail" | "skip";
  readonly reason?: string;
}

const ROOT = resolve(import.meta.dirname, "..", "..", "..", ".tmp", "reports");

/** The directory of this run's reports (`JOBS_RELIABILITY_RUN` is set by `bin/run.ts`; one per process otherwise). */
export function reportDir(): string {
  const run = process.env.JOBS_RELIABILITY_RUN ?? `adhoc-${new Date().toISOString().replace(/[:.]/g, "-")}-${process.pid}`;
  process.env.JOBS_RELIABILITY_RUN = run;
  const dir = join(ROOT, run);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Builds a report whose verdict follows from its bars, writes it, and returns it (tests then assert `verdict === "pass"`). */
export function writeReport(report: Omit<Report, "verdict"> & { readonly verdict?: Report["verdict"] }): Report {
  const verdict = report.verdict ?? (report.bars.every((b) => b.ok) ? "pass" : "fail");
  const full: Report = { ...report, verdict };
  const file = join(reportDir(), `${report.test}-${report.adapter}.json`.replace(/[^A-Za-z0-9_.-]/g, "_"));
  writeFileSync(file, `${JSON.stringify(full, null, 2)}\n`);
  return full;
}

/** A bar helper: `bar("lost", lost, "= 0", lost === 0)`. */
export const bar = (name: string, value: Bar["value"], limit: string, ok: boolean): Bar => ({ name, value, limit, ok });

/** Reads every report of a run. */
export function readReports(run: string): Report[] {
  const dir = join(ROOT, run);
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".json"));
  } catch {
    return [];
  }
  return files.sort().map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as Report);
}

/** The summary table of a run's reports, and the closing `N passed, N failed` line. */
export function summary(reports: readonly Report[]): string {
  const rows = reports.map((r) => {
    const failed = r.bars.filter((b) => !b.ok).map((b) => `${b.name}=${String(b.value)} (want ${b.limit})`);
    const note = r.verdict === "skip" ? (r.reason ?? "") : failed.join("; ");
    return `${r.test.padEnd(14)} ${r.adapter.padEnd(9)} ${r.verdict.padEnd(5)} seed=${String(r.seed).padEnd(11)} ${note}`;
  });
  const passed = reports.filter((r) => r.verdict === "pass").length;
  const failedRows = rows.filter((_, i) => reports[i]?.verdict === "fail");
  // The failures again just above the last line, so a log cut to its tail still names them.
  const again = failedRows.length === 0 ? [] : ["", "failed:", ...failedRows];
  return [`${"test".padEnd(14)} ${"adapter".padEnd(9)} verdict`, ...rows, ...again, `${passed} passed, ${failedRows.length} failed`].join(
    "\n",
  );
}
