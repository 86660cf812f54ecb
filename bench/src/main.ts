/**
 * The bench harness: the same workload on an adapter and on its baselines, in one process, with a
 * warm-up before and the median of several runs reported. Prints markdown; asserts nothing about
 * speed (a slow result is a finding, not a failure).
 *
 *   node --conditions=@jobs/source --expose-gc --import tsx src/main.ts [--adapter memory] [--jobs 50000] [--quick]
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { adapters, type BenchAdapter } from "./adapters.js";
import { gcExposed, setRunHooks, type Timing, type TrialFactory, timeTrial } from "./measure.js";
import {
  addRunTrial,
  CODEC_VARIANTS,
  enqueueBulkTrial,
  enqueueSingleTrial,
  type LatencyResult,
  measureLatency,
  processTrial,
  type Variant,
} from "./ours.js";
import { profilerHooks } from "./profiler.js";
import { formatMs, formatRate, formatRatio, type Measurement, machineReport, medianRate, rateTable, runsTable, table } from "./report.js";
import { type EnqueueParams, makePayloads, type ThroughputParams } from "./workload.js";

const SECTIONS = ["enqueue", "process", "add-run", "latency"] as const;
type Section = (typeof SECTIONS)[number];

interface Settings {
  readonly adapters: readonly BenchAdapter[];
  readonly jobs: number;
  readonly warmupJobs: number;
  readonly repeats: number;
  readonly concurrencies: readonly number[];
  readonly inflight: number;
  readonly batch: number;
  readonly rate: number;
  readonly durationMs: number;
  readonly latencyConcurrency: number;
  readonly timeoutMs: number;
  readonly sections: ReadonlySet<Section>;
  readonly profileDir: string | undefined;
  readonly jsonFile: string | undefined;
  /** Also run ours with signing, and with signing and encryption (`--codec`). */
  readonly codec: boolean;
}

const USAGE = `usage: bench [options]
  --adapter <names>        comma-separated adapters, or "all" (default: memory; known: ${Object.keys(adapters).join(", ")})
  --jobs <n>               jobs per measured run (default 50000; --quick: 5000)
  --repeats <n>            measured runs per cell, median reported (default 3; --quick: 1)
  --warmup <n>             jobs per warm-up run (default jobs/5, at least 1000)
  --concurrency <list>     worker concurrencies (default 1,10,100)
  --inflight <n>           concurrent single enqueues (default 100)
  --batch <n>              items per enqueueMany (default 100)
  --rate <n>               jobs/s offered in the latency run (default 1000)
  --duration <s>           seconds of the latency run (default 3; --quick: 1)
  --latency-concurrency <n> worker concurrency in the latency run (default 10)
  --baselines <list>       baselines to run beside ours, or "none" (default: all of the adapter's)
  --only <list>            sections to run: ${SECTIONS.join(",")} (default all)
  --timeout <s>            hang guard per run (default 300)
  --json <file>            also write every measurement (all runs, in ms) as JSON
  --profile-runs <dir>     write a CPU profile of each measured run's timed part to <dir>
  --codec                  also run ours with signed jobs (ours+sign) and signed, encrypted jobs (ours+sign+enc)
  --otel                   also run "ours+otel": tracing on, through the OpenTelemetry SDK with an exporter to nowhere
  --quick                  small, single-run settings for a smoke check
  --help`;

function positiveInt(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`[bench] --${flag} expects a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

function parseSettings(argv: readonly string[]): Settings | undefined {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      adapter: { type: "string" },
      jobs: { type: "string" },
      repeats: { type: "string" },
      warmup: { type: "string" },
      concurrency: { type: "string" },
      inflight: { type: "string" },
      batch: { type: "string" },
      rate: { type: "string" },
      duration: { type: "string" },
      "latency-concurrency": { type: "string" },
      only: { type: "string" },
      baselines: { type: "string" },
      "profile-runs": { type: "string" },
      json: { type: "string" },
      timeout: { type: "string" },
      quick: { type: "boolean", default: false },
      codec: { type: "boolean", default: false },
      otel: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return undefined;
  }
  const quick = values.quick === true;
  withOtel = values.otel === true;
  const names = (values.adapter ?? "memory") === "all" ? Object.keys(adapters) : (values.adapter ?? "memory").split(",");
  const wanted = values.baselines === undefined ? undefined : new Set(values.baselines === "none" ? [] : values.baselines.split(","));
  const selected = names.map((name) => {
    const adapter = adapters[name.trim()];
    if (adapter === undefined)
      throw new Error(`[bench] unknown adapter ${JSON.stringify(name)}; known: ${Object.keys(adapters).join(", ")}`);
    return wanted === undefined ? adapter : { ...adapter, baselines: adapter.baselines.filter((b) => wanted.has(b.name)) };
  });
  const jobs = positiveInt(values.jobs, quick ? 5_000 : 50_000, "jobs");
  const sections = new Set<Section>();
  for (const s of (values.only ?? SECTIONS.join(",")).split(",")) {
    if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`[bench] --only: unknown section ${JSON.stringify(s)}`);
    sections.add(s as Section);
  }
  return {
    adapters: selected,
    jobs,
    warmupJobs: positiveInt(values.warmup, Math.max(1_000, Math.floor(jobs / 5)), "warmup"),
    repeats: positiveInt(values.repeats, quick ? 1 : 3, "repeats"),
    concurrencies: (values.concurrency ?? "1,10,100").split(",").map((c) => positiveInt(c, 1, "concurrency")),
    inflight: positiveInt(values.inflight, 100, "inflight"),
    batch: positiveInt(values.batch, 100, "batch"),
    rate: positiveInt(values.rate, 1_000, "rate"),
    durationMs: positiveInt(values.duration, quick ? 1 : 3, "duration") * 1000,
    latencyConcurrency: positiveInt(values["latency-concurrency"], 10, "latency-concurrency"),
    timeoutMs: positiveInt(values.timeout, 300, "timeout") * 1000,
    sections,
    profileDir: values["profile-runs"],
    jsonFile: values.json,
    codec: values.codec === true,
  };
}

/** One contender of a cell: its name and how to build a trial of `jobs` jobs. */
interface Contender {
  readonly name: string;
  readonly trial: (jobs: number) => TrialFactory;
}

/**
 * Measures one cell for every contender: a warm-up run each, then `repeats` rounds in which every
 * contender runs once, the order rotating each round so no one always goes first after a gc.
 */
async function measureCell(
  s: Settings,
  section: string,
  row: string,
  contenders: readonly Contender[],
  jobs: number,
): Promise<Measurement[]> {
  for (const c of contenders) await timeTrial(c.trial(Math.min(jobs, s.warmupJobs)));
  const runs = new Map<string, Timing[]>(contenders.map((c) => [c.name, []]));
  for (let r = 0; r < s.repeats; r++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(k + r) % contenders.length] as Contender;
      (runs.get(c.name) as Timing[]).push(await timeTrial(c.trial(jobs), `${section} ${row} ${c.name} run ${r + 1}`));
    }
  }
  const measured = contenders.map((c) => {
    const timings = runs.get(c.name) as Timing[];
    return { section, row, contender: c.name, jobs, runsMs: timings.map((t) => t.wallMs), cpuMs: timings.map((t) => t.cpuMs) };
  });
  for (const m of measured) {
    process.stderr.write(`  ${section} | ${row} | ${m.contender}: ${formatRate(medianRate(m))} jobs/s\n`);
  }
  return measured;
}

/** Everything measured in this process, for `--json`. */
const recorded: { adapter: string; measurements: Measurement[]; latency: LatencyResult[] }[] = [];

/** `--otel`: "ours+otel" runs too. */
let withOtel = false;

/** Our contenders on an adapter: without a store, with one where the adapter can open one, with tracing (`--otel`), with the codec (`--codec`). */
function oursVariants(adapter: BenchAdapter, s: Settings): Variant[] {
  const variants: Variant[] = adapter.openStore === undefined ? ["ours"] : ["ours", "ours+store"];
  if (withOtel) variants.push("ours+otel");
  return s.codec ? [...variants, ...CODEC_VARIANTS] : variants;
}

async function benchAdapter(adapter: BenchAdapter, s: Settings): Promise<string> {
  const out: string[] = [`## Adapter: ${adapter.name}`, "", adapter.description, ""];
  const payloads = makePayloads(s.jobs);
  const measurements: Measurement[] = [];
  const latencies: LatencyResult[] = [];
  recorded.push({ adapter: adapter.name, measurements, latency: latencies });
  const throughput = (jobs: number, concurrency: number): ThroughputParams => ({
    jobs,
    concurrency,
    batch: s.batch,
    payloads: payloads.slice(0, jobs),
    timeoutMs: s.timeoutMs,
  });
  const enqueue = (jobs: number, inflight: number): EnqueueParams => ({
    jobs,
    inflight,
    batch: s.batch,
    payloads: payloads.slice(0, jobs),
  });

  if (s.sections.has("enqueue")) {
    const modes: { row: string; inflight: number; bulk: boolean }[] = [
      { row: "single, sequential (1 in flight)", inflight: 1, bulk: false },
      { row: `single, ${s.inflight} in flight`, inflight: s.inflight, bulk: false },
      { row: `bulk, enqueueMany × ${s.batch}`, inflight: 1, bulk: true },
    ];
    const names = new Set<string>(oursVariants(adapter, s));
    for (const mode of modes) {
      const contenders: Contender[] = oursVariants(adapter, s).map((variant) => ({
        name: variant,
        trial: (jobs) => () =>
          mode.bulk
            ? enqueueBulkTrial(adapter, enqueue(jobs, mode.inflight), variant)
            : enqueueSingleTrial(adapter, enqueue(jobs, mode.inflight), variant),
      }));
      for (const b of adapter.baselines) {
        const factory = mode.bulk ? b.enqueueBulk : b.enqueueSingle;
        if (factory !== undefined) {
          names.add(b.name);
          contenders.push({ name: b.name, trial: (jobs) => () => factory(enqueue(jobs, mode.inflight)) });
        }
      }
      measurements.push(...(await measureCell(s, "enqueue", mode.row, contenders, s.jobs)));
    }
    out.push(
      `### Enqueue (jobs/s, ${s.jobs} jobs, ~100-byte payload, median of ${s.repeats})`,
      "",
      rateTable(
        measurements.filter((m) => m.section === "enqueue"),
        modes.map((m) => m.row),
        [...names],
      ),
      "",
    );
  }

  for (const section of ["process", "add-run"] as const) {
    if (!s.sections.has(section)) continue;
    const rows: string[] = [];
    const names = [
      ...oursVariants(adapter, s),
      ...adapter.baselines.filter((b) => (section === "process" ? b.process : b.addRun) !== undefined).map((b) => b.name),
    ];
    for (const concurrency of s.concurrencies) {
      const row = `concurrency ${concurrency}`;
      rows.push(row);
      const contenders: Contender[] = oursVariants(adapter, s).map((variant) => ({
        name: variant,
        trial: (jobs) => () => (section === "process" ? processTrial : addRunTrial)(adapter, throughput(jobs, concurrency), variant),
      }));
      for (const b of adapter.baselines) {
        const factory = section === "process" ? b.process : b.addRun;
        if (factory !== undefined) contenders.push({ name: b.name, trial: (jobs) => () => factory(throughput(jobs, concurrency)) });
      }
      measurements.push(...(await measureCell(s, section, row, contenders, s.jobs)));
    }
    out.push(
      section === "process"
        ? `### Process (jobs/s: ${s.jobs} jobs ready before the clock, no-op async handler; consumers created before the clock, as the raw baselines' are; timed from worker start to the last job.succeeded; median of ${s.repeats})`
        : `### Add+run (jobs/s: timed from the first enqueue — enqueueMany × ${s.batch} for ours, add()/push() for peers — to the last job done, worker already running; median of ${s.repeats})`,
      "",
      rateTable(
        measurements.filter((m) => m.section === section),
        rows,
        names,
      ),
      "",
    );
  }

  if (s.sections.has("latency")) {
    const params = { rate: s.rate, concurrency: s.latencyConcurrency, timeoutMs: s.timeoutMs };
    await measureLatency(adapter, { ...params, durationMs: Math.min(s.durationMs, 1_000) });
    const results: LatencyResult[] = [];
    for (let r = 0; r < s.repeats; r++) results.push(await measureLatency(adapter, { ...params, durationMs: s.durationMs }));
    latencies.push(...results);
    for (const l of results) {
      process.stderr.write(`  latency | p50 ${formatMs(l.p50)} ms, p99 ${formatMs(l.p99)} ms, max ${formatMs(l.max)} ms\n`);
    }
    out.push(
      `### Enqueue→start latency (single enqueues offered at ${s.rate} jobs/s for ${s.durationMs / 1000} s, worker concurrency ${s.latencyConcurrency}; one row per run)`,
      "",
      table(
        ["run", "jobs", "achieved jobs/s", "p50 ms", "p90 ms", "p99 ms", "max ms"],
        results.map((l, i) => [
          String(i + 1),
          String(l.samples),
          formatRate(l.achievedRate),
          formatMs(l.p50),
          formatMs(l.p90),
          formatMs(l.p99),
          formatMs(l.max),
        ]),
      ),
      "",
    );
  }

  const ratios = measurements.filter(
    (m) => m.section === "process" && m.contender !== "ours" && !(CODEC_VARIANTS as readonly string[]).includes(m.contender),
  );
  if (ratios.length > 0) {
    out.push("### Ratios, process jobs/s (ours ÷ peer, and ours+store ÷ ours and ÷ peer, medians)", "");
    for (const m of ratios) {
      for (const variant of oursVariants(adapter, s)) {
        // The codec's variants have their own list below.
        if (variant === m.contender || (CODEC_VARIANTS as readonly string[]).includes(variant)) continue;
        const ours = measurements.find((o) => o.section === "process" && o.row === m.row && o.contender === variant);
        if (ours !== undefined) out.push(`- ${m.row}: ${variant}/${m.contender} = ${formatRatio(medianRate(ours) / medianRate(m))}`);
      }
    }
    out.push("");
  }
  const stored = measurements.filter((m) => m.contender === "ours+store" || m.contender === "ours+otel");
  if (stored.length > 0) {
    out.push("### Cost of records and of tracing (ours+store ÷ ours, ours+otel ÷ ours, and µs per job added, medians)", "");
    for (const m of stored) {
      const ours = measurements.find((o) => o.section === m.section && o.row === m.row && o.contender === "ours");
      if (ours === undefined) continue;
      const extraUs = ((1 / medianRate(m) - 1 / medianRate(ours)) * 1e6).toFixed(1);
      out.push(`- ${m.contender}: ${m.section}, ${m.row}: ${formatRatio(medianRate(m) / medianRate(ours))} (+${extraUs} µs per job)`);
    }
    out.push("");
  }
  const coded = measurements.filter((m) => (CODEC_VARIANTS as readonly string[]).includes(m.contender));
  if (coded.length > 0) {
    out.push("### Cost of the codec (ours+sign and ours+sign+enc ÷ ours, and µs per job added, medians; the bar is 0.8× on process)", "");
    for (const m of coded) {
      const ours = measurements.find((o) => o.section === m.section && o.row === m.row && o.contender === "ours");
      if (ours === undefined) continue;
      const extraUs = ((1 / medianRate(m) - 1 / medianRate(ours)) * 1e6).toFixed(1);
      out.push(`- ${m.section}, ${m.row}, ${m.contender}: ${formatRatio(medianRate(m) / medianRate(ours))} (+${extraUs} µs per job)`);
    }
    out.push("");
  }
  if (adapter.baselines.length > 0) {
    out.push("Baselines:", "", ...adapter.baselines.map((b) => `- ${b.name} (${b.kind}): ${b.note}`), "");
  }
  if (measurements.length > 0) out.push("### Every run (jobs/s)", "", runsTable(measurements), "");
  return out.join("\n");
}

function commandLine(): string {
  const script = path.relative(process.cwd(), process.argv[1] ?? "src/main.ts") || "src/main.ts";
  return ["node", ...process.execArgv, script, ...process.argv.slice(2)].join(" ");
}

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2));
  if (settings === undefined) return;
  if (!gcExposed()) process.stderr.write("[bench] note: start node with --expose-gc to collect garbage between runs\n");
  const profiler = settings.profileDir === undefined ? undefined : profilerHooks(settings.profileDir);
  setRunHooks(profiler);
  const out: string[] = ["# jobs bench", "", machineReport(commandLine()), ""];
  out.push(
    `Settings: ${settings.jobs} jobs per run, warm-up ${settings.warmupJobs} jobs, ${settings.repeats} measured runs per cell (median), ` +
      `concurrency ${settings.concurrencies.join("/")}, ${settings.inflight} in flight, batches of ${settings.batch}, ` +
      `latency at ${settings.rate} jobs/s for ${settings.durationMs / 1000} s.`,
    "",
  );
  for (const adapter of settings.adapters) {
    if (adapter.requiresEnv !== undefined && !process.env[adapter.requiresEnv]) {
      out.push(`## Adapter: ${adapter.name}`, "", `Skipped: ${adapter.requiresEnv} is not set.`, "");
      continue;
    }
    process.stderr.write(`[bench] ${adapter.name}\n`);
    out.push(await benchAdapter(adapter, settings));
  }
  profiler?.close();
  if (settings.jsonFile !== undefined)
    writeFileSync(settings.jsonFile, `${JSON.stringify({ command: commandLine(), results: recorded }, null, 2)}\n`);
  console.log(out.join("\n"));
}

await main();
