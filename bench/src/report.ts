/** Markdown output: tables of jobs/s and ratios. Numbers only; judging them is the reader's job. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { gcExposed, median, rate } from "./measure.js";

/** One measured cell: a contender doing one workload configuration, every run kept. */
export interface Measurement {
  /** Section, e.g. "process". */
  readonly section: string;
  /** Row label inside the section, e.g. "concurrency 10". */
  readonly row: string;
  /** Column: "ours" or a baseline name. */
  readonly contender: string;
  /** Jobs per run. */
  readonly jobs: number;
  /** Elapsed (wall) ms of each run. */
  readonly runsMs: readonly number[];
  /** Process CPU ms of each run (user + system, all threads). */
  readonly cpuMs: readonly number[];
}

/** Median jobs/s of a measurement. */
export function medianRate(m: Measurement): number {
  return rate(m.jobs, median(m.runsMs));
}

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** 123456.7 → "123,457". */
export function formatRate(value: number): string {
  return Number.isFinite(value) ? integer.format(value) : "–";
}

/** 1.234 → "1.23×". */
export function formatRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : "–";
}

/** Milliseconds with a precision that suits their size. */
export function formatMs(value: number): string {
  if (!Number.isFinite(value)) return "–";
  return value < 10 ? value.toFixed(3) : value < 100 ? value.toFixed(2) : value.toFixed(1);
}

/** A markdown table; the first `textColumns` columns are left-aligned, the rest (numbers) right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], textColumns = 1): string {
  const lines = [`| ${header.join(" | ")} |`, `| ${header.map((_, i) => (i < textColumns ? "---" : "---:")).join(" | ")} |`];
  for (const row of rows) lines.push(`| ${row.join(" | ")} |`);
  return lines.join("\n");
}

/**
 * A section's table: one row per row label, one jobs/s column per contender (median of the runs),
 * then "ours/<peer>" ratio columns for every other contender.
 */
export function rateTable(measurements: readonly Measurement[], rowOrder: readonly string[], contenders: readonly string[]): string {
  const find = (row: string, contender: string): Measurement | undefined =>
    measurements.find((m) => m.row === row && m.contender === contender);
  const others = contenders.filter((c) => c !== "ours");
  const header = ["", ...contenders.map((c) => `${c} jobs/s`), ...others.map((c) => `ours/${c}`)];
  const rows = rowOrder.map((row) => {
    const ours = find(row, "ours");
    const oursRate = ours === undefined ? Number.NaN : medianRate(ours);
    return [
      row,
      ...contenders.map((c) => {
        const m = find(row, c);
        return m === undefined ? "–" : formatRate(medianRate(m));
      }),
      ...others.map((c) => {
        const m = find(row, c);
        return m === undefined ? "–" : formatRatio(oursRate / medianRate(m));
      }),
    ];
  });
  return table(header, rows);
}

/** Every run of every measurement, so the spread behind each median is visible. */
export function runsTable(measurements: readonly Measurement[]): string {
  return table(
    ["section", "row", "contender", "jobs", "jobs/s of each run", "spread (max−min)/median", "CPU µs/job (median)", "CPU/wall"],
    measurements.map((m) => {
      const rates = m.runsMs.map((ms) => rate(m.jobs, ms));
      const lo = Math.min(...rates);
      const hi = Math.max(...rates);
      return [
        m.section,
        m.row,
        m.contender,
        String(m.jobs),
        rates.map(formatRate).join(", "),
        rates.length > 1 ? `${(((hi - lo) / medianRate(m)) * 100).toFixed(1)} %` : "–",
        ((median(m.cpuMs) * 1000) / m.jobs).toFixed(2),
        (median(m.cpuMs) / median(m.runsMs)).toFixed(2),
      ];
    }),
    3,
  );
}

/** The CPU model as /proc/cpuinfo names it (falls back to os.cpus()). */
function cpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (match?.[1] !== undefined) return match[1].trim();
  } catch {
    // Not Linux: os.cpus() below.
  }
  return os.cpus()[0]?.model ?? "unknown";
}

/** The commit the sources come from, and which package sources differ from it (numbers from a dirty tree say so). */
function sourceState(): string {
  try {
    const git = (...args: string[]): string => execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const commit = git("rev-parse", "--short", "HEAD").trim();
    // Porcelain lines are "XY path": the two status columns may be spaces, so no trimming.
    const dirty = git("status", "--porcelain", "--", "../packages")
      .split("\n")
      .filter((line) => line.length > 0 && line.includes("/src/"))
      .map((line) => line.slice(3).replace(/^packages\//, ""));
    return dirty.length === 0 ? `git ${commit}, package sources clean` : `git ${commit} + uncommitted changes in ${dirty.join(", ")}`;
  } catch {
    return "unknown (not a git checkout)";
  }
}

/** The machine and process the numbers come from. */
export function machineReport(command: string): string {
  return table(
    ["", ""],
    [
      ["date", new Date().toISOString()],
      ["node", `${process.version} (V8 ${process.versions.v8})`],
      ["CPU", `${cpuModel()}, ${os.availableParallelism()} cores available`],
      ["OS", `${os.type()} ${os.release()} ${os.arch()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM`],
      ["sources", sourceState()],
      ["gc between runs", gcExposed() ? "yes (--expose-gc)" : "no (start node with --expose-gc)"],
      ["command", `\`${command}\``],
    ],
    2,
  );
}
