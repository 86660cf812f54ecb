/**
 * `@opentelemetry/api` is an optional peer dependency that core never imports (the caller passes
 * the module in `tracing`): in a project without it, core and the memory broker load and run jobs.
 * The project is a temporary directory outside this repository, so nothing resolves from the
 * workspace's node_modules; it gets core's and memory's sources, and runs through tsx.
 */
import { execFile } from "node:child_process";
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const packages = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
// tsx is the workspace root's.
const tsx = createRequire(join(packages, "../package.json")).resolve("tsx");

const SCRIPT = `
import { createClient, createWorker, defineJob } from "@jobs/core";
import { createMemoryBroker } from "@jobs/memory";

let otel = "absent";
try {
  await import("@opentelemetry/api");
  otel = "present";
} catch {}
const job = defineJob({ name: "hello", queue: "q" });
const broker = createMemoryBroker();
const seen = [];
const worker = createWorker({ broker }).handle(job, (payload, ctx) => { seen.push({ payload, trace: ctx.job.trace ?? null }); });
await worker.start();
const done = new Promise((resolve) => worker.on("job.succeeded", resolve));
await createClient({ broker }).enqueue(job, { n: 1 }, { trace: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" } });
await done;
await worker.close();
await broker.close();
console.log(JSON.stringify({ otel, seen }));
`;

let dir = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "jobs-without-otel-"));
  for (const name of ["core", "memory"]) {
    const to = join(dir, "node_modules/@jobs", name);
    await cp(join(packages, name, "src"), join(to, "src"), { recursive: true });
    await cp(join(packages, name, "package.json"), join(to, "package.json"));
  }
  await writeFile(join(dir, "package.json"), JSON.stringify({ name: "without-otel", type: "module", private: true }));
  await writeFile(join(dir, "main.ts"), SCRIPT);
});

afterAll(async () => {
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

describe("without @opentelemetry/api installed", () => {
  it("imports core and runs a job, which still carries the trace given to enqueue", async () => {
    const { stdout } = await run(process.execPath, ["--conditions=@jobs/source", "--import", tsx, "main.ts"], { cwd: dir });
    expect(JSON.parse(stdout.trim())).toEqual({
      otel: "absent",
      seen: [{ payload: { n: 1 }, trace: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" } }],
    });
  });
});
