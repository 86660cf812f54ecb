import { basename } from "node:path";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";
import { estimatedSeconds } from "./src/lanes.js";

/** Longest file first (by the measured lengths in src/lanes.ts), so each lane's order, and what runs beside what, is the same on every run. */
class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const key = (spec: TestSpecification): string => basename(spec.moduleId);
    return [...files].sort((a, b) => estimatedSeconds(key(b)) - estimatedSeconds(key(a)) || key(a).localeCompare(key(b)));
  }
}

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
    sequence: { sequencer: LongestFirst },
    testTimeout: 300_000,
    hookTimeout: 180_000,
    passWithNoTests: true,
  },
});
