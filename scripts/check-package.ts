// The package check, run by every published package's `check:package` in the package's folder. It packs
// the package once with pnpm, exactly as `pnpm publish` would, and checks that tarball:
//   - publint --strict and attw --profile esm-only (ESM-only packages: node10 and CJS `require` are out of scope);
//   - package.json, README.md and LICENSE are in it;
//   - no test files (test/ folders, *.test.*, *.spec.*, *.test-d.ts) or build leftovers (*.tsbuildinfo);
//   - every `sourceMappingURL` comment names a map that is in it;
//   - every `sources` path of every source and declaration map is in it (or inlined in `sourcesContent`).
// Usage: node --import tsx ../../scripts/check-package.ts [package folder, default: the current one]
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REQUIRED = ["package.json", "README.md", "LICENSE"];
const TEST_FILE = /(^|\/)(test|tests|__tests__)\/|\.(test|spec)\.[cm]?[jt]sx?$|\.test-d\.ts$|\.tsbuildinfo$/;
const MAPPING_URL = /\/[/*][#@] sourceMappingURL=([^\s*]+)/;

/** Checks the files of an extracted package (paths relative to its root, "/"-separated). Returns the problems found. */
export function checkPackedFiles(files: ReadonlyMap<string, () => string>): string[] {
  const problems: string[] = [];
  for (const name of REQUIRED) if (!files.has(name)) problems.push(`${name} is not in the tarball`);
  for (const path of files.keys()) if (TEST_FILE.test(path)) problems.push(`${path} should not be published`);
  for (const [path, read] of files) {
    if (/\.(m|c)?js$|\.d\.(m|c)?ts$/.test(path)) {
      const url = MAPPING_URL.exec(read())?.[1];
      if (url !== undefined && !url.startsWith("data:")) {
        const target = posix.join(posix.dirname(path), url);
        if (!files.has(target)) problems.push(`${path}: sourceMappingURL ${url} is not in the tarball`);
      }
    }
    if (!path.endsWith(".map")) continue;
    let map: { sources?: unknown; sourceRoot?: unknown; sourcesContent?: unknown };
    try {
      map = JSON.parse(read()) as typeof map;
    } catch {
      problems.push(`${path}: not JSON`);
      continue;
    }
    const sources = Array.isArray(map.sources) ? (map.sources as unknown[]) : [];
    const contents = Array.isArray(map.sourcesContent) ? (map.sourcesContent as unknown[]) : [];
    const root = typeof map.sourceRoot === "string" ? map.sourceRoot : "";
    sources.forEach((source, i) => {
      if (typeof contents[i] === "string") return;
      const target = typeof source === "string" ? posix.join(posix.dirname(path), root, source) : undefined;
      if (target === undefined || !files.has(target)) problems.push(`${path}: source ${String(source)} is not in the tarball`);
    });
  }
  return problems;
}

function walk(dir: string, prefix: string, out: Map<string, () => string>): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    const rel = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) walk(full, rel, out);
    else out.set(rel, () => readFileSync(full, "utf8"));
  }
}

interface Packed {
  readonly name: string;
  readonly tarball: string;
  readonly files: number;
  readonly problems: string[];
}

/** Packs the package in `dir` with pnpm into `work`, extracts it there and checks its files. */
function packAndCheck(dir: string, work: string): Packed {
  const out = execFileSync("pnpm", ["pack", "--json", "--pack-destination", work], { cwd: dir, encoding: "utf8" });
  const { name, filename } = JSON.parse(out) as { name: string; filename: string };
  execFileSync("tar", ["-xzf", filename, "-C", work]);
  const files = new Map<string, () => string>();
  walk(join(work, "package"), "", files);
  return { name, tarball: filename, files: files.size, problems: checkPackedFiles(files) };
}

/** Packs the package in `dir` with pnpm and checks the tarball's files (publint and attw aside). */
export function checkPackage(dir: string): { name: string; files: number; problems: string[] } {
  const work = mkdtempSync(join(tmpdir(), "jobs-pack-"));
  try {
    const { name, files, problems } = packAndCheck(dir, work);
    return { name, files, problems };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith("check-package.ts")) {
  const bin = (tool: string) => fileURLToPath(new URL(`../node_modules/.bin/${tool}`, import.meta.url));
  const work = mkdtempSync(join(tmpdir(), "jobs-pack-"));
  let failed = false;
  try {
    const { name, tarball, files, problems } = packAndCheck(resolve(process.argv[2] ?? "."), work);
    // Both read the tarball just packed: one pack per package, which keeps `pnpm check:packages` quick.
    for (const [tool, args] of [
      ["publint", ["run", tarball, "--strict"]],
      ["attw", [tarball, "--profile", "esm-only", "--format", "table-flipped"]],
    ] as const) {
      const run = spawnSync(bin(tool), [...args], { stdio: "inherit" });
      if (run.status !== 0) {
        console.error(`${name}: ${tool} failed`);
        failed = true;
      }
    }
    if (problems.length > 0) {
      console.error(`${name}: the packed tarball has ${problems.length} problem(s):\n  ${problems.join("\n  ")}`);
      failed = true;
    } else {
      console.log(`${name}: ${files} files packed; package.json, README.md and LICENSE present, no test files, every map resolves`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  if (failed) process.exit(1);
}
