// The package READMEs' ```ts examples compile against the packages' current sources.
import { expect, it } from "vitest";
import { publishedPackages } from "../published-packages.js";
import { extractTsBlocks, readmeBlocks, typecheckBlocks } from "../readme-examples.js";

it("finds the ```ts blocks of a markdown text, with their first line", () => {
  const blocks = extractTsBlocks("# t\n\n```sh\npnpm add x\n```\n\n```ts\nconst a = 1;\nconst b = 2;\n```\n", "t.md");
  expect(blocks).toEqual([{ source: "t.md", line: 8, code: "const a = 1;\nconst b = 2;" }]);
});

it("every published package's README has a ts example", () => {
  const sources = new Set(readmeBlocks().map(({ block }) => block.source));
  for (const pkg of publishedPackages()) expect(sources).toContain(`packages/${pkg.dir}/README.md`);
});

it("every README example type-checks, and a wrong one in the same program does not", { timeout: 120_000 }, () => {
  const blocks = readmeBlocks();
  const redis = publishedPackages().find((pkg) => pkg.dir === "redis");
  expect(redis).toBeDefined();
  // A planted example with an option createRedisBroker does not have: proves the check can fail.
  const planted = extractTsBlocks(
    '```ts\nimport { createRedisBroker } from "@jobs/redis";\n\nexport const broker = createRedisBroker({ nope: true });\n```\n',
    "planted.md",
  );
  const errors = typecheckBlocks([...blocks, ...planted.map((block) => ({ block, packageDir: redis!.path }))]);
  expect(errors.filter((error) => !error.startsWith("planted.md:"))).toEqual([]);
  expect(errors.filter((error) => error.startsWith("planted.md:4: "))).toHaveLength(1);
  expect(errors.join("\n")).toContain("nope");
});
