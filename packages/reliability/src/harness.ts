/**
 * The orchestrator's side of a chaos test (RELIABILITY.md d.2): forks worker and producer
 * processes running the TypeScript sources, follows their progress over IPC, kills only pids it
 * forked, writes every fault to `faults.ndjson`, detects the drain (d.1), and reads the ledgers
 * back for the checker. `close()` kills whatever is still running: no child outlives a test.
 */
import { type ChildProcess, fork } from "node:child_process";
import { closeSync, mkdirSync, openSync, readdirSync, statSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Broker } from "@jobs/core";
import { physicalQueues } from "@jobs/core/adapter";
import type { Fault } from "./checker.js";
import { type LedgerRead, readLedgers } from "./ledger.js";
import type { ChildMessage, ParentMessage, ProducerParams, WorkerParams } from "./processes/params.js";
import { reportDir } from "./report.js";

const PACKAGE_ROOT = resolve(import.meta.dirname, "..");
const ENTRIES = {
  worker: join(PACKAGE_ROOT, "src", "processes", "worker.ts"),
  producer: join(PACKAGE_ROOT, "src", "processes", "producer.ts"),
  proxy: join(PACKAGE_ROOT, "src", "processes", "proxy.ts"),
} as const;

/** Node flags of every forked process: run the TypeScript sources of the workspace. */
export const CHILD_EXEC_ARGV: readonly string[] = ["--conditions=@jobs/source", "--import", "tsx", "--expose-gc"];

/** A process the harness forked. */
export interface Proc {
  readonly role: "worker" | "producer" | "proxy";
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves on its `ready` message; rejects if it dies or reports `fatal` first. */
  readonly ready: Promise<void>;
  /** Resolves when it has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True until it exits. */
  readonly alive: boolean;
  /** True once the harness killed it on purpose. */
  readonly killed: boolean;
  /** True once it reported `ready`. */
  readonly isReady: boolean;
  /** The tail of its stdout and stderr, for diagnostics. */
  output(): string;
}

/** The drain result (RELIABILITY.md d.1). */
export interface DrainResult {
  /** Counts reached zero and no ledger line was written for the quiet period, before the cap. */
  readonly drained: boolean;
  /** Last fault → last ledger line, ms. */
  readonly drainMs: number;
  /** Wall time spent in `drain`, ms. */
  readonly waitedMs: number;
  /** The last counts seen (waiting + delayed + active over the queue's physical queues); -1 if the broker did not answer. */
  readonly lastCount: number;
}

/** One chaos run: its directory, its processes and its faults. */
export class Harness {
  /** `.tmp/reliability-runs/<run>/<test>-<adapter>`. */
  readonly dir: string;
  readonly ledgerDir: string;
  readonly faults: Fault[] = [];
  /** Keys with a `done` reported over IPC (the ledgers are the truth; this is progress only). */
  readonly done: Set<string> = new Set();
  /** Keys the producers reported accepted. */
  readonly accepted: Set<string> = new Set();
  rejected: number = 0;
  /** When the first handler started (ms since the epoch), from IPC. */
  firstStartAt: number | undefined;
  /** Producers that sent `finished`. */
  producersFinished: number = 0;
  /** Worker exits the harness did not cause (crashes). */
  readonly crashes: { pid: number; code: number | null; signal: string | null; output: string }[] = [];
  readonly #procs = new Set<Proc>();
  readonly #waiters = new Set<() => void>();
  #faultFd: number | undefined;

  constructor(test: string, adapter: string) {
    const run = resolve(reportDir(), "..", "..", "reliability-runs", process.env.JOBS_RELIABILITY_RUN ?? "adhoc");
    this.dir = join(run, `${test}-${adapter}-${Date.now()}`);
    this.ledgerDir = join(this.dir, "ledger");
    mkdirSync(this.ledgerDir, { recursive: true });
    this.#faultFd = openSync(join(this.dir, "faults.ndjson"), "a");
  }

  /** Records a fault (now, unless `t` is given) in memory and in `faults.ndjson`. */
  fault(kind: string, fields: Omit<Fault, "t" | "kind"> & { t?: number } = {}): Fault {
    const f: Fault = { ...fields, t: fields.t ?? Date.now(), kind };
    this.faults.push(f);
    if (this.#faultFd !== undefined) writeSync(this.#faultFd, `${JSON.stringify(f)}\n`);
    return f;
  }

  /** Forks a worker process and resolves once it consumes; `entry` replaces `processes/worker.ts` (a variant taking the same params and more). */
  async spawnWorker<P extends Omit<WorkerParams, "ledgerDir">>(params: P, entry?: string): Promise<Proc> {
    const proc = this.#fork("worker", { ...params, ledgerDir: this.ledgerDir }, entry);
    await proc.ready;
    return proc;
  }

  /** Forks a worker process without waiting for it to be ready (`proc.ready` tells). */
  forkWorker<P extends Omit<WorkerParams, "ledgerDir">>(params: P, entry?: string): Proc {
    return this.#fork("worker", { ...params, ledgerDir: this.ledgerDir }, entry);
  }

  /** Forks a producer process (it starts enqueuing at once); resolves once forked. */
  spawnProducer<P extends Omit<ProducerParams, "ledgerDir">>(params: P, entry?: string): Proc {
    return this.#fork("producer", { ...params, ledgerDir: this.ledgerDir }, entry);
  }

  /** Forks a process of `role` with `params` as its JSON argument (used by the proxy client too). */
  forkRole(role: Proc["role"], params: unknown): Proc {
    return this.#fork(role, params);
  }

  /** Workers alive now. */
  workers(): Proc[] {
    return [...this.#procs].filter((p) => p.role === "worker" && p.alive);
  }

  /** Workers alive and consuming (past their start-up). */
  readyWorkers(): Proc[] {
    return this.workers().filter((p) => p.isReady);
  }

  /** SIGKILLs a process the harness forked, records the fault, and waits for its exit. */
  async kill(proc: Proc): Promise<void> {
    if (!this.#procs.has(proc) || !proc.alive) return;
    (proc as { killed: boolean }).killed = true;
    // The window runs from the signal to the observed exit: the victim can still write ledger lines
    // (a start, an ack) in the milliseconds before SIGKILL lands, and those executions died with it.
    const t = Date.now();
    proc.child.kill("SIGKILL");
    await proc.exited;
    this.fault("kill", { pid: proc.pid, t, until: Date.now() });
  }

  /** Sends a message to a child. */
  send(proc: Proc, message: ParentMessage | Readonly<Record<string, unknown>>): void {
    if (proc.alive && proc.child.connected) proc.child.send(message);
  }

  /** Resolves once `condition()` holds, re-checked on every IPC message; rejects after `timeoutMs`. */
  until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise<void>((resolvePromise, reject) => {
      const check = (): void => {
        if (!condition()) return;
        cleanup();
        resolvePromise();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`[reliability] timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
    });
  }

  /**
   * Waits for the drain (d.1): the queue's counts (waiting, delayed, in flight) are zero and no
   * ledger line was written for `quietMs` (3 × lease). Gives up at `lastFaultT + capMs`.
   */
  async drain(options: {
    readonly broker: Broker;
    readonly queue: string;
    readonly quietMs: number;
    readonly capMs: number;
    readonly lastFaultT: number;
  }): Promise<DrainResult> {
    const started = Date.now();
    const queues = physicalQueues(options.queue, options.broker.capabilities).map((q) => q.name);
    let lastSize = -1;
    let lastChange = Date.now();
    let lastCount = -1;
    for (;;) {
      const size = this.#ledgerBytes();
      const now = Date.now();
      if (size !== lastSize) {
        lastSize = size;
        lastChange = now;
      }
      try {
        let n = 0;
        for (const q of queues) {
          const c = await options.broker.counts(q);
          n += c.waiting + c.delayed + c.active;
        }
        lastCount = n;
      } catch {
        lastCount = -1;
      }
      const drainMs = Math.max(0, lastChange - options.lastFaultT);
      if (lastCount === 0 && Date.now() - lastChange >= options.quietMs)
        return { drained: true, drainMs, waitedMs: Date.now() - started, lastCount };
      if (Date.now() - options.lastFaultT > options.capMs) return { drained: false, drainMs, waitedMs: Date.now() - started, lastCount };
      // Polling the broker's counts and the ledgers' sizes: the drain is a state, not an event.
      await sleep(500);
    }
  }

  /** Every ledger line written so far, and the faults. */
  read(): LedgerRead & { readonly faults: readonly Fault[] } {
    return { ...readLedgers(this.ledgerDir), faults: this.faults };
  }

  /** Asks every live worker to close gracefully and waits (killing any that take longer than `timeoutMs`). */
  async closeWorkers(timeoutMs = 15_000): Promise<void> {
    const live = this.workers();
    for (const w of live) this.send(w, { type: "close" });
    await Promise.all(
      live.map(async (w) => {
        const timer = setTimeout(() => w.child.kill("SIGKILL"), timeoutMs);
        await w.exited;
        clearTimeout(timer);
      }),
    );
  }

  /** Kills every process still alive (SIGKILL) and waits for them. Idempotent; call it in afterEach. */
  async close(): Promise<void> {
    const live = [...this.#procs].filter((p) => p.alive);
    for (const p of live) {
      (p as { killed: boolean }).killed = true;
      p.child.kill("SIGKILL");
    }
    await Promise.all(live.map((p) => p.exited));
    // Once only: a closed descriptor number may already belong to another file.
    if (this.#faultFd !== undefined) closeSync(this.#faultFd);
    this.#faultFd = undefined;
  }

  #ledgerBytes(): number {
    let total = 0;
    for (const name of readdirSync(this.ledgerDir)) {
      try {
        total += statSync(join(this.ledgerDir, name)).size;
      } catch {
        // a file being created
      }
    }
    return total;
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  #fork(role: Proc["role"], params: unknown, entry: string = ENTRIES[role]): Proc {
    const child = fork(entry, [JSON.stringify(params)], {
      cwd: PACKAGE_ROOT,
      execArgv: [...CHILD_EXEC_ARGV],
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      serialization: "json",
    });
    if (child.pid === undefined) throw new Error(`[reliability] could not fork the ${role}`);
    let output = "";
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-8_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    let readyResolve: () => void = () => {};
    let readyReject: (e: Error) => void = () => {};
    const ready = new Promise<void>((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    ready.catch(() => {});
    const proc: Proc = {
      role,
      pid: child.pid,
      child,
      ready,
      alive: true,
      killed: false,
      isReady: false,
      output: () => output,
      exited: new Promise((res) => {
        child.once("exit", (code, signal) => {
          (proc as { alive: boolean }).alive = false;
          if (!proc.killed && role === "worker" && code !== 0)
            this.crashes.push({ pid: proc.pid, code, signal, output: output.slice(-2_000) });
          readyReject(new Error(`[reliability] ${role} ${proc.pid} exited (${code ?? signal}) before it was ready:\n${output}`));
          this.#notify();
          res({ code, signal });
        });
      }),
    };
    child.on("message", (message: ChildMessage) => {
      switch (message.type) {
        case "ready":
          (proc as { isReady: boolean }).isReady = true;
          readyResolve();
          break;
        case "fatal":
          readyReject(new Error(`[reliability] ${role} ${proc.pid}: ${message.message}`));
          break;
        case "started":
          this.firstStartAt ??= message.t;
          break;
        case "done":
          for (const k of message.keys) this.done.add(k);
          break;
        case "accepted":
          for (const k of message.keys) this.accepted.add(k);
          this.rejected += message.rejected;
          break;
        case "finished":
          this.producersFinished++;
          break;
      }
      this.#notify();
    });
    this.#procs.add(proc);
    return proc;
  }
}

/** Kills every child a harness of this process forked when the process itself exits (last resort). */
const everyHarness = new Set<Harness>();
process.once("exit", () => {
  for (const h of everyHarness) void h.close();
});

/** Creates a harness that `process.exit` and `closeAllHarnesses` also clean up. */
export function createHarness(test: string, adapter: string): Harness {
  const h = new Harness(test, adapter);
  everyHarness.add(h);
  return h;
}

/** Kills every process of every harness created so far (an `afterEach` safety net for tests that time out). */
export async function closeAllHarnesses(): Promise<void> {
  const all = [...everyHarness];
  everyHarness.clear();
  await Promise.all(all.map((h) => h.close()));
}
