// Every published package carries the root LICENSE, a README, and the metadata from
// scripts/published-packages.ts; the pack check (scripts/check-package.ts) fails on a bad tarball.
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkPackage, checkPackedFiles } from "../check-package.js";
import { publishedPackages, REPOSITORY_URL, REQUIRED_FILES, ROOT, repositoryFields } from "../published-packages.js";

const license = readFileSync(join(ROOT, "LICENSE"), "utf8");
const packages = publishedPackages();
const fix = "run `node --import tsx scripts/sync-packages.ts`";

it("the root LICENSE is MIT, by the jobs contributors", () => {
  expect(license.startsWith("MIT License\n\nCopyright (c) 2026 the jobs contributors\n")).toBe(true);
});

it("the published packages are packages/* minus the private ones", () => {
  const dirs = packages.map((pkg) => pkg.dir);
  expect(dirs).toContain("core");
  expect(dirs).toContain("memory");
  expect(dirs).not.toContain("reliability");
});

describe.each(packages)("packages/$dir", ({ dir, path, manifest }) => {
  it(`has the root LICENSE, byte for byte (${fix})`, () => {
    expect(existsSync(join(path, "LICENSE"))).toBe(true);
    expect(readFileSync(join(path, "LICENSE"), "utf8")).toBe(license);
  });

  it(`has the repository, homepage, bugs and license fields (${fix})`, () => {
    const expected = repositoryFields(dir);
    for (const [key, value] of Object.entries(expected)) expect({ [key]: manifest[key] }).toEqual({ [key]: value });
  });

  it("has keywords, and ships dist, src, README.md and LICENSE, and runs the pack check", () => {
    expect(Array.isArray(manifest.keywords) && manifest.keywords.length > 0).toBe(true);
    expect(manifest.files).toEqual(expect.arrayContaining([...REQUIRED_FILES]));
    const scripts = manifest.scripts as Record<string, string>;
    expect(scripts["check:package"]).toContain("scripts/check-package.ts");
  });

  it("has a README: its name, an install line, and links to the repository only", () => {
    const readme = readFileSync(join(path, "README.md"), "utf8");
    expect(readme.startsWith(`# ${manifest.name as string}\n`)).toBe(true);
    expect(readme).toMatch(new RegExp(`^pnpm add .*${(manifest.name as string).replace("/", "\\/")}`, "m"));
    expect(readme).toContain(`${REPOSITORY_URL}/blob/main/docs/`);
    const github = readme.match(/https:\/\/github\.com\/[^\s)]*/g) ?? [];
    for (const link of github) expect(link.startsWith(REPOSITORY_URL)).toBe(true);
  });
});

describe("the pack check", () => {
  const file = (text: string) => () => text;
  const map = (sources: string[], sourcesContent?: string[]) =>
    file(JSON.stringify({ version: 3, sources, mappings: "", ...(sourcesContent ? { sourcesContent } : {}) }));

  it("passes a complete tarball whose maps resolve or inline their sources", () => {
    const files = new Map([
      ["package.json", file("{}")],
      ["README.md", file("# x")],
      ["LICENSE", file("MIT")],
      ["dist/index.js", file("export {};\n//# sourceMappingURL=index.js.map")],
      ["dist/index.js.map", map(["../src/index.ts"])],
      ["dist/a/b.d.ts.map", map(["../../src/a/b.ts"])],
      ["dist/c.js.map", map(["../src/c.ts"], ["export {};"])],
      ["src/index.ts", file("export {};")],
      ["src/a/b.ts", file("export {};")],
      ["src/testing/index.ts", file("export {};")],
    ]);
    expect(checkPackedFiles(files)).toEqual([]);
  });

  it("names a missing README and LICENSE, test files, a missing map and unresolved sources", () => {
    const files = new Map([
      ["package.json", file("{}")],
      ["dist/index.js", file("export {};\n//# sourceMappingURL=index.js.map")],
      ["dist/a.d.ts.map", map(["../src/a.ts"])],
      ["test/a.test.ts", file("")],
      ["dist/b.spec.js", file("")],
    ]);
    expect(checkPackedFiles(files).sort()).toEqual(
      [
        "README.md is not in the tarball",
        "LICENSE is not in the tarball",
        "test/a.test.ts should not be published",
        "dist/b.spec.js should not be published",
        "dist/index.js: sourceMappingURL index.js.map is not in the tarball",
        "dist/a.d.ts.map: source ../src/a.ts is not in the tarball",
      ].sort(),
    );
  });

  describe("on a real pnpm pack", () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "jobs-pack-check-"));
      await mkdir(join(dir, "dist"));
      await mkdir(join(dir, "src"));
      await writeFile(join(dir, "dist/index.js"), "export const x = 1;\n//# sourceMappingURL=index.js.map\n");
      await writeFile(join(dir, "dist/index.js.map"), JSON.stringify({ version: 3, sources: ["../src/index.ts"], mappings: "" }));
      await writeFile(join(dir, "src/index.ts"), "export const x = 1;\n");
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it("fails a package that ships only dist, then passes it with src, README.md and LICENSE", { timeout: 60_000 }, async () => {
      const manifest = { name: "planted", version: "1.0.0", type: "module", files: ["dist"] };
      await writeFile(join(dir, "package.json"), JSON.stringify(manifest));
      const before = checkPackage(dir);
      expect(before.problems).toContain("README.md is not in the tarball");
      expect(before.problems).toContain("dist/index.js.map: source ../src/index.ts is not in the tarball");

      await writeFile(join(dir, "package.json"), JSON.stringify({ ...manifest, files: ["dist", "src", "README.md", "LICENSE"] }));
      await writeFile(join(dir, "README.md"), "# planted\n");
      await writeFile(join(dir, "LICENSE"), license);
      expect(checkPackage(dir)).toEqual({ name: "planted", files: 6, problems: [] });
    });
  });
});
