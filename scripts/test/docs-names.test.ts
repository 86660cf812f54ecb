// The docs name only what exists: every name a page imports from a `@jobs/*` entry point is
// exported there, and every option table lists exactly the options of the type it documents.
// Names are read from the TypeScript sources with the compiler's own checker (types included,
// which a runtime import would miss).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { beforeAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** `@jobs/<pkg>[/<sub>]` → source file, from each package.json's `@jobs/source` export condition. */
function entryPoints(): Map<string, string> {
  const entries = new Map<string, string>();
  for (const dir of readdirSync(join(root, "packages"))) {
    const manifestPath = join(root, "packages", dir, "package.json");
    if (!existsSync(manifestPath)) continue;
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { name: string; exports?: Record<string, unknown> };
    for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
      const source = typeof target === "object" && target !== null ? (target as Record<string, unknown>)["@jobs/source"] : undefined;
      if (typeof source !== "string") continue;
      entries.set(subpath === "." ? manifest.name : `${manifest.name}/${subpath.slice(2)}`, join(root, "packages", dir, source));
    }
  }
  return entries;
}

/** Markdown a user reads: the README, docs/, and each package's and example's README. */
function pages(): string[] {
  const found: string[] = [join(root, "README.md")];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".md")) found.push(path);
    }
  };
  walk(join(root, "docs"));
  for (const parent of ["packages", "examples"]) {
    for (const dir of readdirSync(join(root, parent))) {
      const readme = join(root, parent, dir, "README.md");
      if (existsSync(readme)) found.push(readme);
    }
  }
  return found;
}

/** Option tables: the page, the type they document, and whether every option must be listed. */
const TABLES: readonly { page: string; nth: number; type: string; from: string; complete: boolean }[] = [
  { page: "docs/adapters/memory.md", nth: 0, type: "MemoryBrokerOptions", from: "@jobs/memory", complete: true },
  { page: "docs/adapters/redis.md", nth: 0, type: "RedisBrokerOptions", from: "@jobs/redis", complete: true },
  // The page's second option table is the store's ("The Redis store").
  { page: "docs/adapters/redis.md", nth: 1, type: "RedisStoreOptions", from: "@jobs/redis", complete: true },
  { page: "docs/adapters/rabbitmq.md", nth: 0, type: "RabbitmqBrokerOptions", from: "@jobs/rabbitmq", complete: true },
  { page: "docs/adapters/sqs.md", nth: 0, type: "SqsBrokerOptions", from: "@jobs/sqs", complete: true },
  { page: "docs/adapters/nats.md", nth: 0, type: "NatsBrokerOptions", from: "@jobs/nats", complete: true },
  { page: "docs/adapters/postgres.md", nth: 0, type: "PostgresBrokerOptions", from: "@jobs/postgres", complete: true },
  { page: "docs/concepts/workers.md", nth: 0, type: "WorkerOptions", from: "@jobs/core", complete: true },
  { page: "docs/concepts/jobs.md", nth: 0, type: "JobOptions", from: "@jobs/core", complete: true },
  { page: "docs/concepts/jobs.md", nth: 1, type: "EnqueueOptions", from: "@jobs/core", complete: true },
];

/** The first-column names of the `nth` table whose header's first cell is `option`, with line numbers. */
function optionTable(text: string, nth: number): { name: string; line: number }[] | undefined {
  const lines = text.split("\n");
  let seen = -1;
  for (let i = 0; i < lines.length; i++) {
    if (!/^\|\s*option\s*\|/.test(lines[i] as string)) continue;
    seen++;
    if (seen !== nth) continue;
    const rows: { name: string; line: number }[] = [];
    for (let j = i + 2; j < lines.length && (lines[j] as string).startsWith("|"); j++) {
      const cell = /^\|\s*`([A-Za-z_$][\w$]*)/.exec(lines[j] as string);
      if (cell !== null) rows.push({ name: cell[1] as string, line: j + 1 });
    }
    return rows;
  }
  return undefined;
}

/** Every `import { … } from "@jobs/…"` of a page (code blocks included), name by name. */
function importedNames(text: string): { name: string; from: string; line: number }[] {
  const found: { name: string; from: string; line: number }[] = [];
  const pattern = /import\s+(?:type\s+)?\{([^}]*)\}\s*from\s*["'](@jobs\/[^"']+)["']/g;
  for (const match of text.matchAll(pattern)) {
    const line = text.slice(0, match.index).split("\n").length;
    for (const part of (match[1] as string).split(",")) {
      const name = part
        .trim()
        .replace(/^type\s+/, "")
        .split(/\s+as\s+/)[0]
        ?.trim();
      if (name) found.push({ name, from: match[2] as string, line });
    }
  }
  return found;
}

describe("docs name only what exists", () => {
  const entries = entryPoints();
  let checker: ts.TypeChecker;
  let program: ts.Program;
  const exportsOf = new Map<string, Map<string, ts.Symbol>>();

  beforeAll(() => {
    const base = JSON.parse(readFileSync(join(root, "tsconfig.base.json"), "utf8")) as { compilerOptions: object };
    const { options } = ts.convertCompilerOptionsFromJson({ ...base.compilerOptions, noEmit: true }, root);
    program = ts.createProgram([...entries.values()], options);
    checker = program.getTypeChecker();
    for (const [specifier, file] of entries) {
      const source = program.getSourceFile(file);
      const moduleSymbol = source === undefined ? undefined : checker.getSymbolAtLocation(source);
      const names = new Map<string, ts.Symbol>();
      for (const symbol of moduleSymbol === undefined ? [] : checker.getExportsOfModule(moduleSymbol)) names.set(symbol.name, symbol);
      exportsOf.set(specifier, names);
    }
  }, 60_000);

  it("reads the exports of every entry point", () => {
    // A guard for the guard: were the program broken, every name below would look missing.
    expect(exportsOf.get("@jobs/core")?.has("createWorker")).toBe(true);
    expect(exportsOf.get("@jobs/core/adapter")?.has("redactedCause")).toBe(true);
    expect(exportsOf.get("@jobs/redis")?.has("RedisBrokerOptions")).toBe(true);
  });

  it("every name a page imports from @jobs/* is exported there", () => {
    const missing: string[] = [];
    for (const page of pages()) {
      for (const { name, from, line } of importedNames(readFileSync(page, "utf8"))) {
        const names = exportsOf.get(from);
        if (names === undefined) missing.push(`${relative(root, page)}:${line}: no entry point "${from}"`);
        else if (!names.has(name)) missing.push(`${relative(root, page)}:${line}: "${from}" exports no "${name}"`);
      }
    }
    expect(missing).toEqual([]);
  });

  it.each(TABLES)("$page lists the options of $type", ({ page, nth, type, from, complete }) => {
    const rows = optionTable(readFileSync(join(root, page), "utf8"), nth);
    expect(rows, `${page} has no option table #${nth}`).toBeDefined();
    const symbol = exportsOf.get(from)?.get(type);
    expect(symbol, `${from} exports no ${type}`).toBeDefined();
    const resolved =
      (symbol as ts.Symbol).flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol as ts.Symbol) : (symbol as ts.Symbol);
    const properties = checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(resolved));
    const deprecated = (p: ts.Symbol): boolean => p.getJsDocTags(checker).some((tag) => tag.name === "deprecated");
    const known = new Set(properties.map((p) => p.name));
    const listed = new Set((rows ?? []).map((r) => r.name));
    const unknown = (rows ?? []).filter((r) => !known.has(r.name)).map((r) => `${page}:${r.line}: ${type} has no option "${r.name}"`);
    const unlisted = complete
      ? properties
          .filter((p) => !listed.has(p.name) && !deprecated(p))
          .map((p) => `${page}: option "${p.name}" of ${type} is not in the table`)
      : [];
    expect([...unknown, ...unlisted]).toEqual([]);
  });
});
