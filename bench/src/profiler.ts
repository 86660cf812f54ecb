/**
 * `--profile-runs <dir>`: a V8 CPU profile of the timed part of each measured run only (set-up,
 * warm-up and teardown stay out), one `.cpuprofile` per run, for `profile-summary.ts` or DevTools.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import path from "node:path";
import type { RunHooks } from "./measure.js";

/** Hooks that start the profiler before a run and write its profile after. */
export function profilerHooks(dir: string): RunHooks & { close(): void } {
  mkdirSync(dir, { recursive: true });
  const session = new Session();
  session.connect();
  let count = 0;
  let ready: Promise<unknown> | undefined;
  return {
    async before() {
      ready ??= Promise.all([session.post("Profiler.enable"), session.post("Profiler.setSamplingInterval", { interval: 100 })]);
      await ready;
      await session.post("Profiler.start");
    },
    async after(label) {
      const { profile } = await session.post("Profiler.stop");
      count++;
      const name = `${String(count).padStart(3, "0")}-${label.replace(/[^A-Za-z0-9]+/g, "-")}.cpuprofile`;
      writeFileSync(path.join(dir, name), JSON.stringify(profile));
    },
    close() {
      session.disconnect();
    },
  };
}
