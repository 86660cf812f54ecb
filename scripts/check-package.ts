// The pack check, run by every published package's `check:package` (after publint and attw), in the
// package's folder: packs the package with pnpm exactly as `pnpm publish` would, extracts the tarball
// and fails when
//   - package.json, README.md or LICENSE is missing from it,
//   - it holds test files (test/ folders, *.test.*, *.spec.*, *.test-d.ts) or build leftovers (*.tsbuildinfo),
//   - a `sourceMappingURL` comment names a map that is not in it,
//   - a source or declaration map lists a `sources` path that is not in it (and not inlined in `sourcesContent`).
// Usage: node --import tsx ../../scripts/check-package.ts [package folder, default: the current one]
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix, resolve } from "node:path";

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

/** Packs the package in `dir` with pnpm and checks the tarball. */
export function checkPackage(dir: string): { name: string; files: number; problems: string[] } {
  const work = mkdtempSync(join(tmpdir(), "jobs-pack-"));
  try {
    const out = execFileSync("pnpm", ["pack", "--json", "--pack-destination", work], { cwd: dir, encoding: "utf8" });
    const { name, filename } = JSON.parse(out) as { name: string; filename: string };
    execFileSync("tar", ["-xzf", filename, "-C", work]);
    const files = new Map<string, () => string>();
    walk(join(work, "package"), "", files);
    return { name, files: files.size, problems: checkPackedFiles(files) };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith("check-package.ts")) {
  const { name, files, problems } = checkPackage(resolve(process.argv[2] ?? "."));
  if (problems.length > 0) {
    console.error(`${name}: the packed tarball has ${problems.length} problem(s):\n  ${problems.join("\n  ")}`);
    process.exit(1);
  }
  console.log(`${name}: ${files} files packed; package.json, README.md and LICENSE present, no test files, every map resolves`);
}
