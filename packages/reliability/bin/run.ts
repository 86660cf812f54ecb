/**
 * `pnpm test:reliability [--full] [--adapter <name>[,<name>…]]`: runs the reliability suite (tier A
 * by default, tier B with `--full`) on the chosen adapters, one test file at a time.
 */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { readReports, summary } from "../src/report.js";

const args = process.argv.slice(2);
const env: Record<string, string> = { ...(process.env as Record<string, string>) };
const passThrough: string[] = [];
for (let i = 0; i < args.length; i++) {
  const arg = args[i] as string;
  if (arg === "--full") env.JOBS_RELIABILITY_TIER = "B";
  else if (arg === "--adapter") env.JOBS_RELIABILITY_ADAPTERS = args[++i] ?? "";
  else if (arg.startsWith("--adapter=")) env.JOBS_RELIABILITY_ADAPTERS = arg.slice("--adapter=".length);
  else if (arg !== "--") passThrough.push(arg);
}
const run = `${new Date().toISOString().replace(/[:.]/g, "-")}-${process.pid}`;
env.JOBS_RELIABILITY_RUN = run;
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const vitest = join(root, "node_modules", ".bin", "vitest");
const result = spawnSync(vitest, ["run", "--config", join(root, "vitest.config.ts"), ...passThrough], { stdio: "inherit", env });
const reports = readReports(run);
console.log(`\n== reliability summary (tier ${env.JOBS_RELIABILITY_TIER ?? "A"}, reports in .tmp/reports/${run}) ==`);
console.log(summary(reports));
const failed = reports.some((r) => r.verdict === "fail");
process.exit(failed ? 1 : (result.status ?? 1));
