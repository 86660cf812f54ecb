/**
 * In-process peers: p-queue and fastq doing the same no-op work as our worker. They hold tasks in
 * memory and promise nothing on a crash, so they bound what an in-process job queue can cost.
 */
import fastq from "fastq";
import PQueue from "p-queue";
import type { Baseline } from "./adapters.js";
import { type Trial, within } from "./measure.js";
import { type BenchPayload, checkRan, noop, ran, type ThroughputParams } from "./workload.js";

/** A no-op job for p-queue: a closure over its payload, as an application would write it. */
function pqueueAddAll(queue: PQueue, payloads: readonly BenchPayload[], failures: unknown[]): void {
  for (const payload of payloads) {
    queue.add(() => noop(payload)).catch((error: unknown) => failures.push(error));
  }
}

/** p-queue: tasks added with `autoStart: false`; timed from `start()` until `onIdle()`. */
async function pqueueProcess(p: ThroughputParams): Promise<Trial> {
  const queue = new PQueue({ concurrency: p.concurrency, autoStart: false });
  const failures: unknown[] = [];
  const before = ran.count;
  pqueueAddAll(queue, p.payloads, failures);
  return {
    async run() {
      queue.start();
      await within(queue.onIdle(), p.timeoutMs, "p-queue process");
      if (failures.length > 0) throw new Error("[bench] p-queue tasks failed", { cause: failures[0] });
    },
    async dispose() {
      checkRan(before, p.jobs, "p-queue process");
      queue.clear();
    },
  };
}

/** p-queue: timed from the first `add()` until `onIdle()`. */
async function pqueueAddRun(p: ThroughputParams): Promise<Trial> {
  const queue = new PQueue({ concurrency: p.concurrency });
  const failures: unknown[] = [];
  const before = ran.count;
  return {
    async run() {
      pqueueAddAll(queue, p.payloads, failures);
      await within(queue.onIdle(), p.timeoutMs, "p-queue add+run");
      if (failures.length > 0) throw new Error("[bench] p-queue tasks failed", { cause: failures[0] });
    },
    async dispose() {
      checkRan(before, p.jobs, "p-queue add+run");
      queue.clear();
    },
  };
}

function fastqPushAll(queue: fastq.queueAsPromised<BenchPayload, void>, payloads: readonly BenchPayload[], failures: unknown[]): void {
  for (const payload of payloads) {
    queue.push(payload).catch((error: unknown) => failures.push(error));
  }
}

/** fastq (promise API, async worker): tasks pushed while paused; timed from `resume()` until `drained()`. */
async function fastqProcess(p: ThroughputParams): Promise<Trial> {
  const queue = fastq.promise<unknown, BenchPayload, void>(noop, p.concurrency);
  const failures: unknown[] = [];
  const before = ran.count;
  queue.pause();
  fastqPushAll(queue, p.payloads, failures);
  return {
    async run() {
      const drained = queue.drained();
      queue.resume();
      await within(drained, p.timeoutMs, "fastq process");
      if (failures.length > 0) throw new Error("[bench] fastq tasks failed", { cause: failures[0] });
    },
    async dispose() {
      checkRan(before, p.jobs, "fastq process");
      queue.kill();
    },
  };
}

/** fastq: timed from the first `push()` until `drained()`. */
async function fastqAddRun(p: ThroughputParams): Promise<Trial> {
  const queue = fastq.promise<unknown, BenchPayload, void>(noop, p.concurrency);
  const failures: unknown[] = [];
  const before = ran.count;
  return {
    async run() {
      fastqPushAll(queue, p.payloads, failures);
      await within(queue.drained(), p.timeoutMs, "fastq add+run");
      if (failures.length > 0) throw new Error("[bench] fastq tasks failed", { cause: failures[0] });
    },
    async dispose() {
      checkRan(before, p.jobs, "fastq add+run");
      queue.kill();
    },
  };
}

/** p-queue 9 (`new PQueue({ concurrency })`, one closure per task). */
export const pqueueBaseline: Baseline = {
  name: "p-queue",
  kind: "peer",
  note: "p-queue 9.3.5, in-process promise queue, one closure per task",
  process: pqueueProcess,
  addRun: pqueueAddRun,
};

/** fastq 1.20 (`fastq.promise(worker, concurrency)`, async worker). */
export const fastqBaseline: Baseline = {
  name: "fastq",
  kind: "peer",
  note: "fastq 1.20.3, in-process queue, promise API with an async worker",
  process: fastqProcess,
  addRun: fastqAddRun,
};
