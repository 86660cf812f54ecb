/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): self time per function and per file, so
 * hot spots in core and the adapters can be read without a browser.
 *
 *   node --import tsx src/profile-summary.ts [--top 30] [--filter packages/] <file.cpuprofile>...
 *
 * Several files are added up (e.g. the three measured runs of one cell from `--profile-runs`).
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const { values, positionals } = parseArgs({
  options: { top: { type: "string", default: "30" }, filter: { type: "string" } },
  allowPositionals: true,
});
if (positionals.length === 0) {
  console.error("usage: profile-summary [--top 30] [--filter packages/] <file.cpuprofile>...");
  process.exit(2);
}
const top = Number(values.top);
const filter = values.filter;
let totalUs = 0;
const selfByFrame = new Map<string, { readonly frame: ProfileNode["callFrame"]; us: number }>();
for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  // Samples under node:inspector are the profiler starting itself (`--profile-runs`), not the run.
  const excluded = new Set<number>();
  const exclude = (id: number): void => {
    excluded.add(id);
    for (const child of byId.get(id)?.children ?? []) exclude(child);
  };
  for (const node of profile.nodes) if (node.callFrame.url === "node:inspector") exclude(node.id);
  profile.samples.forEach((id, i) => {
    if (excluded.has(id)) return;
    const dt = profile.timeDeltas[i] ?? 0;
    totalUs += dt;
    const frame = byId.get(id)?.callFrame;
    if (frame === undefined) return;
    const key = `${frame.functionName}\u0000${frame.url}\u0000${frame.lineNumber}`;
    const entry = selfByFrame.get(key);
    if (entry === undefined) selfByFrame.set(key, { frame, us: dt });
    else entry.us += dt;
  });
}

function shortUrl(url: string): string {
  const at = url.search(/packages\/|bench\/|node_modules\/\.pnpm\/|node:/);
  return at >= 0 ? url.slice(at).replace(/node_modules\/\.pnpm\/[^/]+\/node_modules\//, "") : url || "(native)";
}

const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
for (const { frame: f, us } of selfByFrame.values()) {
  const where = shortUrl(f.url);
  const key = `${f.functionName || "(anonymous)"}  ${where}:${f.lineNumber + 1}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + us);
  byFile.set(where, (byFile.get(where) ?? 0) + us);
}

const pct = (us: number): string => `${((us / totalUs) * 100).toFixed(1).padStart(5)} %`;
const ms = (us: number): string => `${(us / 1000).toFixed(1).padStart(8)} ms`;
console.log(`${positionals.length} profile(s), total sampled: ${(totalUs / 1000).toFixed(1)} ms\n\nself time by file:`);
for (const [where, us] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  if (filter === undefined || where.includes(filter)) console.log(`${pct(us)} ${ms(us)}  ${where}`);
}
console.log("\nself time by function:");
for (const [key, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  if (filter === undefined || key.includes(filter)) console.log(`${pct(us)} ${ms(us)}  ${key}`);
}
