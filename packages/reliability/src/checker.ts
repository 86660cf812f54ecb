/**
 * The checker (RELIABILITY.md d.1): a pure function from ledgers and faults to Jepsen's buckets.
 *
 * Producer lines: `intent{id}` before enqueue, then `accepted{id}` or `rejected{id, ambiguous, code}`.
 * Worker lines: `start{id, attempt}` first in the handler, `done{id}` last, `succeeded{id}` (older
 * ledgers: `ack{id}`, read alike) once the library reported the job settled (`job.succeeded`: the
 * broker acked it and, with a store, its record said `succeeded` first), plus `lease-lost{id}`, `dead-lettered{id,
 * reason}` and connection events. Ids are the scenario's own keys (payload field), so they work on
 * brokers that reject caller-chosen job ids.
 */
import type { LedgerLine } from "./ledger.js";

/** One fault the orchestrator caused, as written to `faults.ndjson`. */
export interface Fault {
  /** When it happened (ms since the epoch). */
  readonly t: number;
  /** `kill` (of `pid`), `spawn` (informational), or any broker/network fault (`broker-crash`, `broker-stop`, `broker-ready`, `proxy`, …). */
  readonly kind: string;
  /** The process a `kill` hit. */
  readonly pid?: number;
  readonly broker?: string;
  readonly mode?: string;
  /** End of a fault window (a fault with a duration: a pause, an outage); a point event without it. */
  readonly until?: number;
}

/** Ledger kinds of `job.succeeded`: `succeeded`, and `ack` in the ledgers of processes that still write that name. */
const SUCCEEDED_KINDS: ReadonlySet<string> = new Set(["succeeded", "ack"]);

/** Fault kinds that change nothing a job could notice. */
const INFORMATIONAL = new Set(["spawn", "note"]);

/** An unexplained second start of a job. */
export interface UnexplainedDuplicate {
  readonly id: string;
  readonly firstPid: number;
  readonly firstT: number;
  readonly secondPid: number;
  readonly secondT: number;
}

/** A start of a job after a worker had finished it successfully. */
export interface FinishedThenRunAgain {
  readonly id: string;
  readonly succeededPid: number;
  readonly succeededT: number;
  readonly startPid: number;
  readonly startT: number;
}

/** A kill and what it hit. */
export interface KillFigure {
  readonly t: number;
  readonly pid: number;
  /** Jobs started by that pid and not yet settled (no `succeeded` line) at the kill. */
  readonly inFlight: number;
}

/** What the checker found. Id lists are complete; reports may truncate them. */
export interface CheckReport {
  /** Ids with an `intent` line. */
  readonly attempted: number;
  readonly accepted: number;
  /** Rejected with a non-ambiguous error: nothing was stored. */
  readonly definite: number;
  /** Rejected with `EnqueueOutcomeUnknownError`: may or may not exist. */
  readonly ambiguous: number;
  /** Intents without an outcome line (the producer died, or the enqueue never settled). */
  readonly unresolved: string[];
  /** Longest time from intent to outcome, ms. */
  readonly maxPendingMs: number;
  /** Ids with at least one `done` line. */
  readonly completed: number;
  /** Accepted, never completed, not expected to dead-letter. Must be 0. */
  readonly lost: string[];
  /** Completed but never attempted. Must be 0. */
  readonly phantom: string[];
  /** Ambiguous and completed. */
  readonly recovered: string[];
  /** Definitely rejected yet completed: the rejection was wrong. */
  readonly definiteCompleted: string[];
  /** Second-or-later starts with a fault between them and the previous one. */
  readonly explainedDuplicates: number;
  /** Second-or-later starts without such a fault. Must be 0. */
  readonly unexplained: UnexplainedDuplicate[];
  /** Second-or-later starts of a job whose previous execution the library had already acked (the broker lost the ack, or a bug). */
  readonly redeliveredAfterAck: number;
  /**
   * Starts of a job later (by time, across processes) than a `succeeded` line of the same key: a
   * job a worker had already finished successfully ran again. With a store that loses no
   * acknowledged write it must be 0 (a delivery of a `succeeded` record is acked unrun); without
   * one it counts what a lost or late ack costs.
   */
  readonly finishedThenRunAgain: number;
  /** A few of those starts: the key, the first `succeeded` line, and the later start. */
  readonly finishedThenRunAgainSample: readonly FinishedThenRunAgain[];
  /** Most starts of any one job. */
  readonly maxStarts: number;
  /** Dead-lettered jobs by reason (ids counted once per line). */
  readonly deadLettered: Readonly<Record<string, number>>;
  /** Dead-lettered ids that were designed to succeed. */
  readonly unexpectedDead: string[];
  /** Each `kill` fault, with the jobs in flight on the killed pid. */
  readonly kills: KillFigure[];
  /**
   * Per orphaning, ms: an orphan (in flight at a kill) gives kill → its next start; one re-orphaned
   * on its way back (see `reorphaned`) gives two: kill → the second kill, and second kill → its next start.
   */
  readonly orphanRecoveryMs: number[];
  /**
   * Orphans whose redelivery went to a worker that was killed before starting it: a `recv` line of a
   * pid killed after it, or a delivery count that skipped a number no live worker recorded (the
   * taker died before its `recv` line). The broker gave the job back; a second kill took it again.
   */
  readonly reorphaned: number;
  /** Orphans never started again (their ack landed just before the kill, or they are lost). */
  readonly orphansNotRestarted: number;
  /** Truncated last lines the reader skipped (from `readLedgers`). */
  readonly truncatedLines: number;
}

/** Inputs of `check`. */
export interface CheckInput {
  /** Every producer and worker ledger line, in any order across files (each file's own order kept or not: lines carry `t`). */
  readonly lines: readonly LedgerLine[];
  readonly faults: readonly Fault[];
  /** Ids the scenario designed to fail (dead-lettering them is expected, not a loss). */
  readonly expectedDead?: ReadonlySet<string>;
  /** From `readLedgers`. */
  readonly truncatedLines?: number;
}

function idOf(line: LedgerLine): string | undefined {
  return typeof line.id === "string" ? line.id : undefined;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

/** Applies RELIABILITY.md d.1 to a run's ledgers and faults. Pure: same input, same report. */
export function check(input: CheckInput): CheckReport {
  const expectedDead = input.expectedDead ?? new Set<string>();
  const lines = [...input.lines].sort((a, b) => a.t - b.t);
  const intents = new Map<string, number>();
  const accepted = new Set<string>();
  const definite = new Set<string>();
  const ambiguous = new Set<string>();
  const outcomeAt = new Map<string, number>();
  const done = new Set<string>();
  const starts = new Map<string, LedgerLine[]>();
  const recvs = new Map<string, LedgerLine[]>();
  const acks = new Map<string, LedgerLine[]>();
  const leaseLost = new Map<string, LedgerLine[]>();
  const deadLettered: Record<string, number> = {};
  const unexpectedDead = new Set<string>();

  for (const line of lines) {
    const id = idOf(line);
    switch (line.kind) {
      case "intent":
        if (id !== undefined && !intents.has(id)) intents.set(id, line.t);
        break;
      case "accepted":
        if (id !== undefined) {
          accepted.add(id);
          if (!outcomeAt.has(id)) outcomeAt.set(id, line.t);
        }
        break;
      case "rejected":
        if (id !== undefined) {
          (line.ambiguous === true ? ambiguous : definite).add(id);
          if (!outcomeAt.has(id)) outcomeAt.set(id, line.t);
        }
        break;
      case "start":
        if (id !== undefined) push(starts, id, line);
        break;
      case "done":
        if (id !== undefined) done.add(id);
        break;
      case "succeeded":
      case "ack":
        if (id !== undefined) push(acks, id, line);
        break;
      case "recv":
        if (id !== undefined) push(recvs, id, line);
        break;
      case "lease-lost":
        if (id !== undefined) push(leaseLost, id, line);
        break;
      case "dead-lettered": {
        const reason = typeof line.reason === "string" ? line.reason : "unknown";
        deadLettered[reason] = (deadLettered[reason] ?? 0) + 1;
        if (id === undefined || !expectedDead.has(id)) unexpectedDead.add(id ?? "(undecodable)");
        break;
      }
    }
  }

  // An id both accepted and rejected (a retried enqueue) counts as accepted only.
  for (const id of accepted) {
    definite.delete(id);
    ambiguous.delete(id);
  }
  let maxPendingMs = 0;
  const unresolved: string[] = [];
  for (const [id, t] of intents) {
    const end = outcomeAt.get(id);
    if (end === undefined) unresolved.push(id);
    else maxPendingMs = Math.max(maxPendingMs, end - t);
  }

  const lost = [...accepted].filter((id) => !done.has(id) && !expectedDead.has(id));
  const phantom = [...done].filter((id) => !intents.has(id));
  const recovered = [...ambiguous].filter((id) => done.has(id));
  const definiteCompleted = [...definite].filter((id) => done.has(id));

  const faults = [...input.faults].sort((a, b) => a.t - b.t);
  const kills = faults.filter((f) => f.kind === "kill" && typeof f.pid === "number");
  const globalFaults = faults.filter((f) => f.kind !== "kill" && !INFORMATIONAL.has(f.kind));

  /** When the execution `s` was settled (its pid's first `succeeded` line after it), or undefined. */
  const settledAt = (id: string, s: LedgerLine): number | undefined => acks.get(id)?.find((a) => a.pid === s.pid && a.t >= s.t)?.t;

  let explainedDuplicates = 0;
  let redeliveredAfterAck = 0;
  let maxStarts = 0;
  const unexplained: UnexplainedDuplicate[] = [];
  for (const [id, list] of starts) {
    maxStarts = Math.max(maxStarts, list.length);
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1] as LedgerLine;
      const next = list[i] as LedgerLine;
      // The kill of the process that ran the first start, while it was still alive (its window ends at
      // the observed exit: a start written just after the signal was sent died with the process too).
      const killed = kills.some((f) => f.pid === prev.pid && (f.until ?? f.t) >= prev.t && f.t <= next.t);
      // A broker or network fault (window) anywhere between the two starts (d.1). The ack does not
      // end the window: a broker may lose an ack it had received (JetStream writes consumer state
      // behind, so a kill -9 right after an ack redelivers the job).
      const broker = globalFaults.some((f) => f.t <= next.t && (f.until ?? f.t) >= prev.t);
      const lease = (leaseLost.get(id) ?? []).some((r) => r.t >= prev.t && r.t <= next.t);
      if (killed || broker || lease) explainedDuplicates++;
      else unexplained.push({ id, firstPid: prev.pid, firstT: prev.t, secondPid: next.pid, secondT: next.t });
      const ackedAt = settledAt(id, prev);
      if (ackedAt !== undefined && ackedAt < next.t) redeliveredAfterAck++;
    }
  }

  // A start later than the first `succeeded` of its key, whichever process wrote either.
  const finishedThenRunAgain: FinishedThenRunAgain[] = [];
  for (const [id, list] of starts) {
    const first = acks.get(id)?.[0];
    if (first === undefined) continue;
    for (const s of list)
      if (s.t > first.t) finishedThenRunAgain.push({ id, succeededPid: first.pid, succeededT: first.t, startPid: s.pid, startT: s.t });
  }

  const killFigures: KillFigure[] = [];
  const orphanRecoveryMs: number[] = [];
  let orphansNotRestarted = 0;
  let reorphaned = 0;
  for (const kill of kills) {
    let inFlight = 0;
    for (const [id, list] of starts) {
      const died = kill.until ?? kill.t;
      const orphan = list.find((s) => s.pid === kill.pid && s.t <= died && (settledAt(id, s) ?? Number.POSITIVE_INFINITY) > died);
      if (orphan === undefined) continue;
      inFlight++;
      const again = list.find((s) => s.t > died);
      if (again === undefined) {
        orphansNotRestarted++;
        continue;
      }
      const second = secondKill(recvs.get(id) ?? [], kills, kill, orphan, again);
      if (second === undefined) orphanRecoveryMs.push(again.t - kill.t);
      else {
        reorphaned++;
        orphanRecoveryMs.push(second.t - kill.t, again.t - second.t);
      }
    }
    killFigures.push({ t: kill.t, pid: kill.pid as number, inFlight });
  }

  return {
    attempted: intents.size,
    accepted: accepted.size,
    definite: definite.size,
    ambiguous: ambiguous.size,
    unresolved,
    maxPendingMs,
    completed: done.size,
    lost,
    phantom,
    recovered,
    definiteCompleted,
    explainedDuplicates,
    unexplained,
    redeliveredAfterAck,
    finishedThenRunAgain: finishedThenRunAgain.length,
    finishedThenRunAgainSample: finishedThenRunAgain.slice(0, 20),
    maxStarts,
    deadLettered,
    unexpectedDead: [...unexpectedDead],
    kills: killFigures,
    orphanRecoveryMs: orphanRecoveryMs.sort((a, b) => a - b),
    orphansNotRestarted,
    reorphaned,
    truncatedLines: input.truncatedLines ?? 0,
  };
}

/**
 * The kill that took an orphan again on its way back, or undefined: the orphan `orphan` (started by
 * the pid `kill` hit) next started at `again`, and in between either
 * - a worker received it (`recv`) and was killed before starting it, or
 * - the broker's delivery count skipped a number that no worker recorded: the delivery went to a
 *   process that died before its `recv` line (the line is written as the delivery arrives), so to
 *   a worker killed in between; the latest such kill is taken (recovery from it is the shorter).
 * Recovery is then measured per orphaning: the broker had given the job back before the second kill.
 */
function secondKill(
  recvs: readonly LedgerLine[],
  kills: readonly Fault[],
  kill: Fault,
  orphan: LedgerLine,
  again: LedgerLine,
): Fault | undefined {
  const died = kill.until ?? kill.t;
  const between = recvs.filter((r) => r.t > kill.t && r.t <= again.t);
  const killedAfter = (pid: number, from: number): Fault | undefined =>
    kills.filter((k) => k.pid === pid && (k.until ?? k.t) >= from && k.t <= again.t && k !== kill).at(-1);
  let found: Fault | undefined;
  for (const r of between) {
    if (r.pid === again.pid) continue;
    const k = killedAfter(r.pid, r.t);
    if (k !== undefined && (found === undefined || k.t > found.t)) found = k;
  }
  if (found !== undefined) return found;
  const nOf = (pid: number, until: number): number | undefined => {
    const n = recvs.filter((r) => r.pid === pid && r.t <= until).at(-1)?.n;
    return typeof n === "number" ? n : undefined;
  };
  const first = nOf(orphan.pid, orphan.t);
  const last = nOf(again.pid, again.t);
  if (first === undefined || last === undefined) return undefined;
  const seen = new Set(between.map((r) => r.n));
  let unseen = false;
  for (let n = first + 1; n < last; n++) if (!seen.has(n)) unseen = true;
  if (!unseen) return undefined;
  return kills.filter((k) => k !== kill && k.t > died && k.t < again.t && k.pid !== again.pid).at(-1);
}

/** The q-quantile (0..1) of ascending `sorted` values (nearest rank); 0 when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

/** One orphan that came back later than the bar, and where it was in between (R1). */
export interface SlowOrphan {
  readonly id: string;
  readonly killedPid: number;
  /** Kill → its next start, ms. */
  readonly recoveryMs: number;
  /**
   * `killed-buffer`: received by a worker killed before it started it; `unseen-delivery`: the
   * delivery count skipped a delivery no worker recorded (its taker was killed before its `recv`
   * line); `late-delivery`: first received again after the bar; `held`: received in time, started late.
   * The first two are re-orphaned (`CheckReport.reorphaned`): the bar measures each orphaning.
   */
  readonly cause: "killed-buffer" | "unseen-delivery" | "late-delivery" | "held";
  /** Deliveries between the kill and the next start: ms after the kill, pid, broker count, whether that pid was killed. */
  readonly received: readonly { readonly ms: number; readonly pid: number; readonly n: unknown; readonly killed: boolean }[];
}

/**
 * R1's slow orphans explained from `recv` lines (a worker's record of each delivery as it arrives):
 * for every job in flight at a kill whose next start came more than `limitMs` after it, where it was
 * in between. Pure, like `check`.
 */
export function slowOrphans(lines: readonly LedgerLine[], faults: readonly Fault[], limitMs: number): SlowOrphan[] {
  const sorted = [...lines].sort((a, b) => a.t - b.t);
  const byId = new Map<string, LedgerLine[]>();
  for (const l of sorted) {
    const id = idOf(l);
    if (id !== undefined && (l.kind === "start" || SUCCEEDED_KINDS.has(l.kind) || l.kind === "recv")) push(byId, id, l);
  }
  const kills = faults.filter((f) => f.kind === "kill" && typeof f.pid === "number");
  const killedAt = (pid: number, from: number, to: number): boolean => kills.some((k) => k.pid === pid && k.t >= from && k.t <= to);
  const out: SlowOrphan[] = [];
  for (const kill of kills) {
    for (const [id, list] of byId) {
      const orphan = list.find(
        (s) =>
          s.kind === "start" &&
          s.pid === kill.pid &&
          s.t <= (kill.until ?? kill.t) &&
          !list.some((a) => SUCCEEDED_KINDS.has(a.kind) && a.pid === s.pid && a.t >= s.t && a.t <= (kill.until ?? kill.t)),
      );
      if (orphan === undefined) continue;
      const next = list.find((s) => s.kind === "start" && s.t > (kill.until ?? kill.t));
      if (next === undefined || next.t - kill.t <= limitMs) continue;
      const received = list
        .filter((r) => r.kind === "recv" && r.t > kill.t && r.t <= next.t)
        .map((r) => ({ ms: r.t - kill.t, pid: r.pid, n: r.n, killed: killedAt(r.pid, r.t, next.t) }));
      const cause = received.some((r) => r.killed)
        ? "killed-buffer"
        : secondKill(
              list.filter((r) => r.kind === "recv"),
              kills,
              kill,
              orphan,
              next,
            ) !== undefined
          ? "unseen-delivery"
          : (received[0]?.ms ?? next.t - kill.t) > limitMs
            ? "late-delivery"
            : "held";
      out.push({ id, killedPid: kill.pid as number, recoveryMs: next.t - kill.t, cause, received });
    }
  }
  return out.sort((a, b) => b.recoveryMs - a.recoveryMs);
}
