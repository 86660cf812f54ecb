// Type-checks the ```ts blocks of the package READMEs against the packages' current sources, the
// way a user's project would compile them: each block is a module placed (virtually, nothing is
// written) in its package's folder, so third-party imports resolve from that package's
// dependencies, and `@jobs/*` imports resolve to the workspace packages' sources (their
// "@jobs/source" exports), so no build is needed. Used by scripts/test/readme-examples.test.ts.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { publishedPackages, ROOT } from "./published-packages.js";

export interface CodeBlock {
  /** The file the block came from, relative to the repository root. */
  readonly source: string;
  /** 1-based line of the block's first code line in that file. */
  readonly line: number;
  readonly code: string;
}

/** The ```ts (or ```typescript) blocks of a markdown text. */
export function extractTsBlocks(markdown: string, source: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i] ?? "")) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^```\s*$/.test(lines[end] ?? "")) end++;
    blocks.push({ source, line: start + 1, code: lines.slice(start, end).join("\n") });
    i = end;
  }
  return blocks;
}

/** `paths` mapping every `@jobs/*` entry point to its source file, from each package's exports. */
function workspacePaths(): Record<string, string[]> {
  const paths: Record<string, string[]> = {};
  for (const pkg of publishedPackages()) {
    const exports = pkg.manifest.exports as Record<string, unknown> | undefined;
    for (const [key, target] of Object.entries(exports ?? {})) {
      const source = (target as Record<string, unknown> | null)?.["@jobs/source"];
      if (typeof source !== "string") continue;
      paths[`${pkg.manifest.name as string}${key.slice(1)}`] = [join(pkg.path, source)];
    }
  }
  return paths;
}

function compilerOptions(): ts.CompilerOptions {
  const { config } = ts.readConfigFile(join(ROOT, "tsconfig.base.json"), ts.sys.readFile);
  const { options } = ts.parseJsonConfigFileContent(config, ts.sys, ROOT);
  return {
    ...options,
    noEmit: true,
    declaration: false,
    declarationMap: false,
    sourceMap: false,
    isolatedDeclarations: false,
    customConditions: [],
    paths: workspacePaths(),
  };
}

/**
 * Type-checks blocks, each as a module in the folder of the package named beside it. Returns one
 * message per error, naming the README line, or an empty list.
 */
export function typecheckBlocks(blocks: ReadonlyArray<{ block: CodeBlock; packageDir: string }>): string[] {
  const virtual = new Map<string, { block: CodeBlock; text: string }>();
  blocks.forEach(({ block, packageDir }, i) => {
    virtual.set(join(packageDir, `__readme_example_${i}__.ts`), { block, text: block.code });
  });
  const options = compilerOptions();
  const host = ts.createCompilerHost(options);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (name) => virtual.has(name) || fileExists.call(host, name);
  host.readFile = (name) => virtual.get(name)?.text ?? readFile.call(host, name);
  host.getSourceFile = (name, language, onError, create) => {
    const entry = virtual.get(name);
    if (entry !== undefined) return ts.createSourceFile(name, entry.text, language, true);
    return getSourceFile.call(host, name, language, onError, create);
  };
  const program = ts.createProgram({ rootNames: [...virtual.keys()], options, host });
  const errors: string[] = [];
  // Only the blocks are checked (the packages' own sources are the typecheck task's), which keeps this quick.
  const diagnostics = [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...[...virtual.keys()].flatMap((name) => {
      const file = program.getSourceFile(name);
      return file === undefined ? [] : [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)];
    }),
  ];
  for (const diagnostic of diagnostics) {
    const file = diagnostic.file;
    const entry = file === undefined ? undefined : virtual.get(file.fileName);
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n");
    if (file === undefined || entry === undefined) {
      // An options or global error.
      errors.push(`${file?.fileName ?? "(options)"}: ${message}`);
      continue;
    }
    const { line } = file.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
    errors.push(`${entry.block.source}:${entry.block.line + line}: ${message}`);
  }
  return errors;
}

/** Every ```ts block of packages/<published>/README.md, with the package folder it compiles in. */
export function readmeBlocks(): Array<{ block: CodeBlock; packageDir: string }> {
  return publishedPackages().flatMap((pkg) => {
    const readme = readFileSync(join(pkg.path, "README.md"), "utf8");
    return extractTsBlocks(readme, `packages/${pkg.dir}/README.md`).map((block) => ({ block, packageDir: pkg.path }));
  });
}
