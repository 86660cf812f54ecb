// The job records example, identical on every broker: the same scenario with a job store beside
// the broker (tags, getJob, result(), progress, cancel of a waiting job, listJobs by tag).
import {
  type Broker,
  createClient,
  createWorker,
  type Duration,
  JobFailedError,
  type JobRecord,
  type JobStatus,
  type JobStore,
} from "@jobs/core";
import { registerReportHandler } from "./handlers.js";
import { buildReport } from "./jobs.js";

/** How the records scenario reaches its broker and its store. */
export interface RecordsOptions {
  /** Returns a new connection to the broker: producer and worker use separate ones. */
  readonly connect: () => Broker | Promise<Broker>;
  /** The job store the client and the worker share (the caller closes it). */
  readonly store: JobStore;
  /** Where lines go. @default console.log */
  readonly log?: (line: string) => void;
  /** How long to wait for each result. @default "30s" */
  readonly timeout?: Duration;
}

/** What happened, for the example's test. */
export interface RecordsResult {
  /** The results of the two reports that ran, in enqueue order. */
  readonly results: readonly unknown[];
  /** What `cancel` said of the report cancelled while waiting. */
  readonly cancelOutcome: string;
  /** How `result()` of the cancelled report ended (`JobFailedError.status`). */
  readonly cancelledEnded: string | undefined;
  /** Ids of the jobs whose handler started. */
  readonly started: readonly string[];
  /** The id of the cancelled report. */
  readonly cancelledId: string;
  /** The last progress value of the first report's record. */
  readonly progress: unknown;
  /** Statuses of the batch's records, oldest enqueue first (`listJobs({ tag })`). */
  readonly listed: readonly JobStatus[];
}

/** Runs the records scenario: resolves once every report has ended. */
export async function runRecords(options: RecordsOptions): Promise<RecordsResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const timeout = options.timeout ?? "30s";
  const { store } = options;
  const producer = await options.connect();
  const consumer = await options.connect();
  // The same store on both sides: the client writes each record, the worker claims and finishes it.
  const client = createClient({ broker: producer, store });
  // Concurrency 1: the reports run in enqueue order, so the cancelled one's message comes first.
  const worker = registerReportHandler(createWorker({ broker: consumer, store, context: { log }, concurrency: 1 }));
  const started: string[] = [];
  worker.on("job.started", ({ job }) => started.push(job.id));

  // One tag per run finds this batch again (a networked store keeps earlier runs' records).
  const batch = `batch:${crypto.randomUUID().slice(0, 8)}`;
  try {
    // Enqueued before any worker runs: still waiting, so a cancel means it never starts.
    const unwanted = await client.enqueue(buildReport, { account: "initech", pages: 9 }, { tags: [batch, "tenant:initech"] });
    const cancel = await client.cancel(unwanted.id);
    log(`cancel ${unwanted.id.slice(0, 8)} (waiting): ${cancel.outcome}`);
    const reports = [
      await client.enqueue(buildReport, { account: "acme", pages: 3 }, { tags: [batch, "tenant:acme"] }),
      await client.enqueue(buildReport, { account: "globex", pages: 2 }, { tags: [batch, "tenant:globex"] }),
    ];
    log(`enqueued ${reports.length} reports; the first is ${(await client.getJob(reports[0]?.id ?? ""))?.status}`);

    await worker.start();
    const results: unknown[] = [];
    for (const report of reports) {
      const result = await report.result({ timeout });
      log(`result of ${report.id.slice(0, 8)}: ${JSON.stringify(result)}`);
      results.push(result);
    }
    let cancelledEnded: string | undefined;
    try {
      await unwanted.result({ timeout });
    } catch (error) {
      if (!(error instanceof JobFailedError)) throw error;
      cancelledEnded = error.status;
      log(`result of ${unwanted.id.slice(0, 8)}: JobFailedError, ended ${error.status}`);
    }

    const first = await client.getJob(reports[0]?.id ?? "");
    log(
      `record of ${first?.id.slice(0, 8)}: ${first?.status} on attempt ${first?.attempt}, progress ${JSON.stringify(first?.progress)}, ` +
        `${first?.resultBytes} bytes of result, tags ${first?.tags.join(", ")}`,
    );
    // Page until there is no cursor: a page may be shorter than its limit and still have one.
    const listed: JobRecord[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listJobs({ tag: batch, limit: 50, ...(cursor === undefined ? {} : { cursor }) });
      listed.push(...page.jobs);
      cursor = page.cursor;
    } while (cursor !== undefined);
    for (const job of listed) log(`  ${batch}: ${job.id.slice(0, 8)} ${job.name} ${job.status}`);
    return {
      results,
      cancelOutcome: cancel.outcome,
      cancelledEnded,
      started,
      cancelledId: unwanted.id,
      progress: first?.progress,
      listed: listed.map((j) => j.status),
    };
  } finally {
    await worker.close();
    await consumer.close();
    await producer.close();
  }
}

/** What is off in a run of the records scenario (empty when it went as it should). */
export function checkRecords(result: RecordsResult): string[] {
  const problems: string[] = [];
  if (result.results.length !== 2) problems.push(`expected 2 results, got ${result.results.length}`);
  if (result.cancelOutcome !== "cancelled") problems.push(`cancel of a waiting job said ${result.cancelOutcome}`);
  if (result.cancelledEnded !== "cancelled") problems.push(`result() of the cancelled job ended ${result.cancelledEnded}`);
  if (result.started.includes(result.cancelledId)) problems.push("the cancelled job started");
  if (JSON.stringify(result.progress) !== JSON.stringify({ page: 3, of: 3 })) {
    problems.push(`last progress ${JSON.stringify(result.progress)}`);
  }
  if (result.listed.join() !== "cancelled,succeeded,succeeded") problems.push(`listJobs by tag gave ${result.listed.join()}`);
  return problems;
}

/** The job store of one records run in a test, and what removes it after. */
export interface RecordsTestStore {
  /** Opens the run's store; `prefix` is the run's own (a networked store keeps its keys under it). */
  open(prefix: string): JobStore;
  /** Deletes what the run left under `prefix`, once the store is closed. */
  remove?(prefix: string): Promise<void>;
}

/** How an example's test runs the records scenario. */
export interface RecordsTestOptions {
  /** A new broker connection; `prefix` is the run's own (the redis example keeps its broker keys under it). */
  readonly connect: (prefix: string) => Broker | Promise<Broker>;
  /** The store of the run: opened before it, closed and removed after. */
  readonly store: RecordsTestStore;
  /** Runs last, pass or fail (e.g. deletes the broker's stream). */
  readonly cleanup?: () => Promise<void>;
}

/**
 * Runs the records scenario the way every example's test does: on a store opened for this run
 * under its own prefix, closed and removed afterwards (pass or fail), with the lines captured.
 */
export async function runRecordsInTest(options: RecordsTestOptions): Promise<{ result: RecordsResult; lines: string[] }> {
  const prefix = `jobs-example-test-${crypto.randomUUID().slice(0, 8)}`;
  const store = options.store.open(prefix);
  const lines: string[] = [];
  try {
    const result = await runRecords({ connect: () => options.connect(prefix), store, log: (line) => lines.push(line) });
    return { result, lines };
  } finally {
    await store.close();
    await options.store.remove?.(prefix);
    await options.cleanup?.();
  }
}

/**
 * The records example as a script: runs the scenario, prints a summary, and with `smoke` checks the
 * outcome (a non-zero exit code when it is off). Closes nothing it was given.
 */
export async function recordsMain(options: RecordsOptions & { readonly smoke: boolean }): Promise<void> {
  const result = await runRecords(options);
  console.log(`\n${result.results.length} reports built, 1 cancelled while waiting; the batch lists: ${result.listed.join(", ")}`);
  if (!options.smoke) return;
  const problems = checkRecords(result);
  if (problems.length === 0) {
    console.log("smoke: ok");
  } else {
    console.error(`smoke: ${problems.join("; ")}`);
    process.exitCode = 1;
  }
}
