// The published packages and the metadata every one of them carries, in one place.
// Change REPOSITORY_URL here, then run `node --import tsx scripts/sync-packages.ts` to rewrite the
// package.json fields, the package READMEs' links and the LICENSE copies; scripts/test/packages.test.ts
// fails while anything is out of sync.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository, as a browser URL without a trailing slash. */
export const REPOSITORY_URL = "https://github.com/jobs-dev/jobs";

export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));

export interface PublishedPackage {
  /** Folder name under packages/, e.g. "redis". */
  readonly dir: string;
  /** Absolute path of the folder. */
  readonly path: string;
  /** The parsed package.json. */
  readonly manifest: Record<string, unknown>;
}

/** Every packages/* folder whose package.json is not `"private": true`, sorted by folder name. */
export function publishedPackages(): PublishedPackage[] {
  const packagesDir = join(ROOT, "packages");
  const result: PublishedPackage[] = [];
  for (const dir of readdirSync(packagesDir).sort()) {
    const path = join(packagesDir, dir);
    let text: string;
    try {
      text = readFileSync(join(path, "package.json"), "utf8");
    } catch {
      continue;
    }
    const manifest = JSON.parse(text) as Record<string, unknown>;
    if (manifest.private !== true) result.push({ dir, path, manifest });
  }
  return result;
}

/** The fields sync-packages.ts writes, derived from REPOSITORY_URL and the folder name. */
export function repositoryFields(dir: string, url: string = REPOSITORY_URL): Record<string, unknown> {
  return {
    license: "MIT",
    repository: { type: "git", url: `git+${url}.git`, directory: `packages/${dir}` },
    homepage: `${url}/tree/main/packages/${dir}#readme`,
    bugs: { url: `${url}/issues` },
  };
}

/** What `files` must hold in every published package (besides package-specific folders such as redis's lua). */
export const REQUIRED_FILES: readonly string[] = ["dist", "src", "README.md", "LICENSE"];
