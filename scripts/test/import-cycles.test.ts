// The import-cycle guard (`pnpm check:cycles`) fails on a planted cycle and passes without it.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const depcruise = join(root, "node_modules", ".bin", "depcruise");
const config = join(root, ".dependency-cruiser.cjs");

function cruise(cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(depcruise, ["packages/planted/src", "--config", config], { cwd }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number((error as { code?: unknown }).code ?? 1), output: stdout + stderr });
    });
  });
}

describe("import-cycle guard", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "jobs-cycles-"));
    await mkdir(join(dir, "packages/planted/src/internal"), { recursive: true });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("fails on a cycle through two files and names both", async () => {
    await writeFile(
      join(dir, "packages/planted/src/worker.ts"),
      'import { held } from "./internal/held.js";\nexport const worker = () => held;\n',
    );
    await writeFile(
      join(dir, "packages/planted/src/internal/held.ts"),
      'import type { worker } from "../worker.js";\nexport const held = 1;\nexport type W = typeof worker;\n',
    );
    const { code, output } = await cruise(dir);
    expect(code).not.toBe(0);
    expect(output).toContain("no-circular");
    expect(output).toContain("packages/planted/src/internal/held.ts");
  }, 60_000);

  it("passes once the shared part is split out", async () => {
    await writeFile(join(dir, "packages/planted/src/internal/held.ts"), "export const held = 1;\n");
    const { code, output } = await cruise(dir);
    expect(output).not.toContain("no-circular");
    expect(code).toBe(0);
  }, 60_000);
});
