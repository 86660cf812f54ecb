import { defineConfig } from "vitest/config";

// The reliability suite runs apart from the unit and conformance tests (`pnpm test:all` runs both, one
// after the other): its tests fork processes, kill them and restart brokers, so one vitest process
// runs one file at a time. `bin/run.ts` runs tier A as two such processes side by side over disjoint
// file sets (src/lanes.ts): the files mostly wait on leases, kills and outages, not on the two cores.
const conditions = ["@jobs/source", "node", "import", "default"];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    name: "reliability",
    root: import.meta.dirname,
    include: ["test/**/*.test.ts"],
    // No retries: a flaky case is a bug.
    retry: 0,
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 180_000,
    passWithNoTests: true,
  },
});
