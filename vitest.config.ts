import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Packages are tested from their TypeScript sources through the "@jobs/source" export condition:
// no build is needed before `pnpm test`.
const conditions = ["@jobs/source", "node", "import", "default"];
// Vitest passes the SSR conditions to its workers as --conditions, which also apply to require():
// without "import" there (Node and Vite add it to every import by themselves), a CommonJS package
// that requires a dual one (node-postgres requires pg-pool) gets its CommonJS side.
const ssrConditions = ["@jobs/source", "node", "default"];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions: ssrConditions, externalConditions: ssrConditions } },
  test: {
    // No retries: a flaky case is a bug.
    retry: 0,
    projects: [
      {
        extends: true,
        // Core's behaviour tests run on the in-process broker, read from memory's sources: a package
        // dependency would be a cycle (memory depends on core). See docs/architecture.md, "Where core's tests live".
        resolve: { alias: { "@jobs/memory": fileURLToPath(new URL("packages/memory/src/index.ts", import.meta.url)) } },
        test: {
          name: "core",
          root: "packages/core",
          include: ["test/**/*.test.ts"],
          typecheck: { enabled: true, include: ["test/**/*.test-d.ts"], tsconfig: "./tsconfig.json" },
        },
      },
      { extends: true, test: { name: "memory", root: "packages/memory", include: ["test/**/*.test.ts"] } },
      { extends: true, test: { name: "conformance", root: "packages/conformance", include: ["test/**/*.test.ts"] } },
      { extends: true, test: { name: "redis", root: "packages/redis", include: ["test/**/*.test.ts"] } },
      { extends: true, test: { name: "rabbitmq", root: "packages/rabbitmq", include: ["test/**/*.test.ts"] } },
      { extends: true, test: { name: "sqs", root: "packages/sqs", include: ["test/**/*.test.ts"] } },
      { extends: true, test: { name: "nats", root: "packages/nats", include: ["test/**/*.test.ts"] } },
      { extends: true, test: { name: "postgres", root: "packages/postgres", include: ["test/**/*.test.ts"] } },
      { extends: true, test: { name: "examples", root: "examples", include: ["*/test/**/*.test.ts"] } },
      // Checks of the repository itself (the import-cycle guard).
      { extends: true, test: { name: "repo", root: "scripts", include: ["test/**/*.test.ts"] } },
    ],
  },
});
