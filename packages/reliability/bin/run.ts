/**
 * `pnpm test:reliability [--full] [--adapter <name>[,<name>…]] [--lanes <n>] [-- <vitest args>]`:
 * runs the reliability suite (tier A by default, tier B with `--full`) on the chosen adapters.
 *
 * Each vitest process runs one test file at a time. Tier A runs in two lanes (two vitest processes
 * side by side over disjoint file sets, split by measured length: src/lanes.ts); tier B, and any run
 * given a file or name filter, runs in one. `--lanes <n>` overrides the count. Every lane writes its
 * reports to the same run directory, so the summary covers all of them; the run fails if any lane
 * fails or any report does.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { planLanes, TIER_A_SECONDS, UNMEASURED_SECONDS } from "../src/lanes.js";
import { readReports, reportDir, summary } from "../src/report.js";

const args = process.argv.slice(2);
const env: Record<string, string> = { ...(process.env as Record<string, string>) };
const passThrough: string[] = [];
let lanesWanted: number | undefined;
for (let i = 0; i < args.length; i++) {
  const arg = args[i] as string;
  if (arg === "--full") env.JOBS_RELIABILITY_TIER = "B";
  else if (arg === "--adapter") env.JOBS_RELIABILITY_ADAPTERS = args[++i] ?? "";
  else if (arg.startsWith("--adapter=")) env.JOBS_RELIABILITY_ADAPTERS = arg.slice("--adapter=".length);
  else if (arg === "--lanes") lanesWanted = Number(args[++i]);
  else if (arg.startsWith("--lanes=")) lanesWanted = Number(arg.slice("--lanes=".length));
  else if (arg !== "--") passThrough.push(arg);
}
const tierName = env.JOBS_RELIABILITY_TIER === "B" ? "B" : "A";
// A positional argument is a file filter (or a flag's value, e.g. `-t <name>`): vitest picks the files then.
const filtered = passThrough.some((a) => !a.startsWith("-"));
const laneCount = lanesWanted ?? (tierName === "A" && !filtered ? 2 : 1);
if (!Number.isInteger(laneCount) || laneCount < 1) {
  console.error(`[reliability] --lanes must be a whole number ≥ 1, got ${String(lanesWanted)}`);
  process.exit(2);
}

const run = `${new Date().toISOString().replace(/[:.]/g, "-")}-${process.pid}`;
env.JOBS_RELIABILITY_RUN = run;
process.env.JOBS_RELIABILITY_RUN = run;
// Vitest's JSON reports (per-file times) beside the run's ledgers, not among its reports.
const runDir = join(reportDir(), "..", "..", "reliability-runs", run);
mkdirSync(runDir, { recursive: true });
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const vitest = join(root, "node_modules", ".bin", "vitest");
const config = join(root, "vitest.config.ts");
const userReporter = passThrough.some((a) => a === "--reporter" || a.startsWith("--reporter="));

interface LaneRun {
  readonly name: string;
  readonly files: readonly string[] | undefined;
  readonly estimateS: number;
  readonly json: string;
  status: number | null;
  signal: NodeJS.Signals | null;
  wallMs: number;
}

const lanes: LaneRun[] = (() => {
  if (laneCount === 1)
    return [{ name: "", files: undefined, estimateS: 0, json: join(runDir, "vitest.json"), status: null, signal: null, wallMs: 0 }];
  if (filtered) {
    console.error("[reliability] --lanes > 1 splits the whole suite; give no file or name filter with it");
    process.exit(2);
  }
  const testDir = join(root, "test");
  // vitest.config.ts includes test/**/*.test.ts.
  const files = readdirSync(testDir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".test.ts"))
    .sort()
    .map((f) => join(testDir, f));
  const unmeasured = files.map((f) => basename(f)).filter((f) => TIER_A_SECONDS[f] === undefined);
  if (unmeasured.length > 0)
    console.log(`[reliability] not measured in src/lanes.ts (counted as ${UNMEASURED_SECONDS} s each): ${unmeasured.join(" ")}`);
  return planLanes(files, laneCount).map((lane, i) => ({
    name: `lane ${i + 1}`,
    files: lane.files,
    estimateS: lane.seconds,
    json: join(runDir, `vitest-lane-${i + 1}.json`),
    status: null,
    signal: null,
    wallMs: 0,
  }));
})();

const children = new Set<ChildProcess>();
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.on(signal, () => {
    for (const child of children) child.kill(signal);
  });

/** Runs one lane's vitest; with several lanes, its output is piped and each line prefixed with the lane's name. */
function runLane(lane: LaneRun): Promise<void> {
  // The default reporter (unless the caller chose one) and a JSON report, for the per-file times below.
  const reporters = [...(userReporter ? [] : ["--reporter=default"]), "--reporter=json", `--outputFile.json=${lane.json}`];
  const argv = ["run", "--config", config, ...reporters, ...passThrough, ...(lane.files ?? [])];
  const started = performance.now();
  const piped = lane.name !== "";
  const child = spawn(vitest, argv, { stdio: piped ? ["ignore", "pipe", "pipe"] : "inherit", env });
  children.add(child);
  if (piped) {
    const prefix = `[${lane.name}] `;
    const out = child.stdout;
    const err = child.stderr;
    if (out !== null) createInterface({ input: out }).on("line", (l) => process.stdout.write(`${prefix}${l}\n`));
    if (err !== null) createInterface({ input: err }).on("line", (l) => process.stderr.write(`${prefix}${l}\n`));
  }
  return new Promise((resolveLane) => {
    child.once("error", (error) => {
      console.error(`[reliability] ${lane.name || "vitest"} did not start: ${String(error)}`);
      lane.status = 1;
      resolveLane();
    });
    child.once("close", (code, signal) => {
      children.delete(child);
      lane.status ??= code;
      lane.signal = signal;
      lane.wallMs = performance.now() - started;
      resolveLane();
    });
  });
}

if (lanes.length > 1)
  for (const lane of lanes)
    console.log(
      `[reliability] ${lane.name} (≈ ${Math.round(lane.estimateS / 60)} min measured alone): ${(lane.files ?? []).map((f) => relative(root, f)).join(" ")}`,
    );
await Promise.all(lanes.map(runLane));

/** Per-file wall time from a lane's JSON report (vitest's `startTime` and `endTime` per file). */
function fileTimes(lane: LaneRun): string[] {
  try {
    const json = JSON.parse(readFileSync(lane.json, "utf8")) as {
      testResults?: { name: string; startTime?: number; endTime?: number }[];
    };
    return (json.testResults ?? []).map((r) => {
      const s = r.startTime !== undefined && r.endTime !== undefined ? ((r.endTime - r.startTime) / 1000).toFixed(0) : "?";
      return `  ${relative(root, r.name).padEnd(40)} ${s.padStart(5)} s`;
    });
  } catch {
    return ["  (no JSON report)"];
  }
}

console.log("\n== wall time per lane and file ==");
for (const lane of lanes) {
  const outcome = lane.signal !== null ? `killed by ${lane.signal}` : `exit ${String(lane.status)}`;
  console.log(`${lane.name || "vitest"}: ${(lane.wallMs / 60_000).toFixed(1)} min, ${outcome}`);
  for (const line of fileTimes(lane)) console.log(line);
}
// The summary last: it ends with the plain line `N passed, N failed`.
const reports = readReports(run);
console.log(`\n== reliability summary (tier ${tierName}, reports in .tmp/reports/${run}) ==`);
console.log(summary(reports));
const failedReport = reports.some((r) => r.verdict === "fail");
const failedLane = lanes.some((l) => l.status !== 0);
process.exit(failedReport || failedLane ? 1 : 0);
