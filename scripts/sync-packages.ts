// Writes what scripts/published-packages.ts says into every published package: the repository,
// homepage, bugs and license fields of package.json, the README links to the repository, and a copy
// of the root LICENSE. Run after changing REPOSITORY_URL or the root LICENSE, or when adding a package:
//   node --import tsx scripts/sync-packages.ts
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { publishedPackages, REPOSITORY_URL, ROOT, repositoryFields } from "./published-packages.js";

const license = readFileSync(join(ROOT, "LICENSE"), "utf8");

for (const pkg of publishedPackages()) {
  const fields = repositoryFields(pkg.dir);
  // The URL the package used until now, so that its README links move with it.
  const bugs = pkg.manifest.bugs as { url?: unknown } | undefined;
  const previous = typeof bugs?.url === "string" ? bugs.url.replace(/\/issues$/, "") : undefined;

  // Rebuild the manifest with the fields right after "description"/"keywords", keeping every other key in place.
  const ours = new Set(Object.keys(fields));
  const next: Record<string, unknown> = {};
  let placed = false;
  const place = () => {
    if (placed) return;
    Object.assign(next, fields);
    placed = true;
  };
  for (const [key, value] of Object.entries(pkg.manifest)) {
    if (ours.has(key)) continue;
    next[key] = value;
    if (key === "keywords" || (key === "description" && !("keywords" in pkg.manifest))) place();
  }
  place();
  writeFileSync(join(pkg.path, "package.json"), `${JSON.stringify(next, null, 2)}\n`);

  writeFileSync(join(pkg.path, "LICENSE"), license);

  const readmePath = join(pkg.path, "README.md");
  if (previous !== undefined && previous !== REPOSITORY_URL) {
    try {
      const readme = readFileSync(readmePath, "utf8");
      writeFileSync(readmePath, readme.split(previous).join(REPOSITORY_URL));
    } catch {
      // No README yet: scripts/test/packages.test.ts says so.
    }
  }
  console.log(`synced packages/${pkg.dir}`);
}
