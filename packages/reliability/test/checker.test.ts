import { spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { check, type Fault, quantile, slowOrphans } from "../src/checker.js";
import { type LedgerLine, openLedger, parseLedger, readLedgers } from "../src/ledger.js";

// Synthetic ledgers: producer P (pid 1), workers W1 (pid 11) and W2 (pid 12).
const P = 1;
const line = (kind: string, pid: number, t: number, fields: Record<string, unknown> = {}): LedgerLine => ({ kind, pid, t, ...fields });
const produced = (id: string, t: number): LedgerLine[] => [line("intent", P, t, { id }), line("accepted", P, t + 1, { id })];
const ran = (id: string, pid: number, t: number, ms = 10): LedgerLine[] => [
  line("start", pid, t, { id, attempt: 1 }),
  line("done", pid, t + ms, { id }),
  line("ack", pid, t + ms + 1, { id }),
];

describe("checker (RELIABILITY.md d.1)", () => {
  it("a clean run has every bucket empty", () => {
    const lines = [...produced("a", 0), ...produced("b", 2), ...ran("a", 11, 10), ...ran("b", 12, 12)];
    const r = check({ lines, faults: [] });
    expect(r).toMatchObject({ attempted: 2, accepted: 2, completed: 2, lost: [], phantom: [], unexplained: [], explainedDuplicates: 0 });
    expect(r.maxStarts).toBe(1);
    expect(r.maxPendingMs).toBe(1);
  });

  it("counts an accepted job that never completed as lost, even when it started", () => {
    const lines = [...produced("a", 0), ...produced("b", 2), ...ran("a", 11, 10), line("start", 12, 12, { id: "b" })];
    expect(check({ lines, faults: [] }).lost).toEqual(["b"]);
  });

  it("does not count expected dead letters as lost, and reports unexpected ones", () => {
    const lines = [
      ...produced("a", 0),
      ...produced("poison", 2),
      ...produced("b", 3),
      ...ran("a", 11, 10),
      line("start", 11, 20, { id: "poison" }),
      line("dead-lettered", 11, 21, { id: "poison", reason: "non-retryable" }),
      line("start", 12, 20, { id: "b" }),
      line("dead-lettered", 12, 22, { id: "b", reason: "max-attempts" }),
    ];
    const r = check({ lines, faults: [], expectedDead: new Set(["poison"]) });
    expect(r.lost).toEqual(["b"]);
    expect(r.unexpectedDead).toEqual(["b"]);
    expect(r.deadLettered).toEqual({ "non-retryable": 1, "max-attempts": 1 });
  });

  it("reports a completed job nobody attempted as phantom", () => {
    const lines = [...produced("a", 0), ...ran("a", 11, 10), ...ran("ghost", 12, 10)];
    expect(check({ lines, faults: [] }).phantom).toEqual(["ghost"]);
  });

  it("splits rejections into definite and ambiguous; ambiguous ∩ completed is recovered, definite ∩ completed is flagged", () => {
    const lines = [
      line("intent", P, 0, { id: "amb" }),
      line("rejected", P, 5, { id: "amb", ambiguous: true, code: "enqueue-outcome-unknown" }),
      line("intent", P, 0, { id: "amb2" }),
      line("rejected", P, 5, { id: "amb2", ambiguous: true, code: "enqueue-outcome-unknown" }),
      line("intent", P, 0, { id: "def" }),
      line("rejected", P, 9, { id: "def", ambiguous: false, code: "payload-too-large" }),
      line("intent", P, 0, { id: "hung" }),
      ...ran("amb", 11, 10),
      ...ran("def", 11, 10),
    ];
    const r = check({ lines, faults: [] });
    expect(r).toMatchObject({ attempted: 4, accepted: 0, definite: 1, ambiguous: 2, recovered: ["amb"], definiteCompleted: ["def"] });
    expect(r.lost).toEqual([]);
    expect(r.unresolved).toEqual(["hung"]);
    expect(r.maxPendingMs).toBe(9);
  });

  it("a second start without any fault is an unexplained duplicate", () => {
    const lines = [...produced("a", 0), ...ran("a", 11, 10), ...ran("a", 12, 100)];
    const r = check({ lines, faults: [] });
    expect(r.unexplained).toEqual([{ id: "a", firstPid: 11, firstT: 10, secondPid: 12, secondT: 100 }]);
    expect(r.explainedDuplicates).toBe(0);
    expect(r.maxStarts).toBe(2);
  });

  it("a kill of the pid that ran the first execution explains the second; a kill of another pid does not", () => {
    const lines = [
      ...produced("a", 0),
      ...produced("b", 0),
      line("start", 11, 10, { id: "a" }),
      ...ran("a", 12, 3_000),
      ...ran("b", 12, 10),
      ...ran("b", 12, 3_000),
    ];
    const faults: Fault[] = [{ t: 50, kind: "kill", pid: 11 }];
    const r = check({ lines, faults });
    expect(r.explainedDuplicates).toBe(1);
    expect(r.unexplained.map((u) => u.id)).toEqual(["b"]);
    expect(r.kills).toEqual([{ t: 50, pid: 11, inFlight: 1 }]);
    expect(r.orphanRecoveryMs).toEqual([2_950]);
  });

  it("a kill before the first start or after the second does not explain", () => {
    const lines = [...produced("a", 0), line("start", 11, 100, { id: "a" }), ...ran("a", 12, 200)];
    expect(check({ lines, faults: [{ t: 50, kind: "kill", pid: 11 }] }).unexplained).toHaveLength(1);
    expect(check({ lines, faults: [{ t: 250, kind: "kill", pid: 11 }] }).unexplained).toHaveLength(1);
  });

  it("a broker fault between the two starts explains, by any pid, even after the first ack (the broker may lose it)", () => {
    const lines = [...produced("a", 0), ...ran("a", 11, 10, 100), ...ran("a", 12, 1_000)];
    // Started at 10, acked at 111, started again at 1000.
    const during = check({ lines, faults: [{ t: 50, kind: "broker-crash", broker: "redis" }] });
    expect(during.explainedDuplicates).toBe(1);
    const afterAck = check({ lines, faults: [{ t: 500, kind: "broker-crash", broker: "nats" }] });
    expect(afterAck.explainedDuplicates).toBe(1);
    expect(afterAck.redeliveredAfterAck).toBe(1);
    // Before the first start or after the second: no explanation.
    expect(check({ lines, faults: [{ t: 5, kind: "broker-crash" }] }).unexplained).toHaveLength(1);
    expect(check({ lines, faults: [{ t: 1_500, kind: "broker-crash" }] }).unexplained).toHaveLength(1);
    // A window that began before the start and lasted into it explains too.
    expect(check({ lines, faults: [{ t: 0, until: 20, kind: "proxy", mode: "pause" }] }).explainedDuplicates).toBe(1);
    // Informational faults explain nothing.
    expect(check({ lines, faults: [{ t: 50, kind: "spawn", pid: 13 }] }).unexplained).toHaveLength(1);
  });

  it("a lease-lost event for the job between the starts explains; one for another job does not", () => {
    const base = [...produced("a", 0), ...produced("b", 0), line("start", 11, 10, { id: "a" }), ...ran("a", 12, 500)];
    const own = check({ lines: [...base, line("lease-lost", 11, 300, { id: "a" })], faults: [] });
    expect(own.explainedDuplicates).toBe(1);
    const other = check({ lines: [...base, line("lease-lost", 11, 300, { id: "b" })], faults: [] });
    expect(other.unexplained).toHaveLength(1);
  });

  it("counts in-flight jobs per kill from starts without an ack by that pid, and orphans that never came back", () => {
    const lines = [
      ...produced("a", 0),
      ...produced("b", 0),
      ...produced("c", 0),
      ...ran("a", 11, 10), // settled before the kill
      line("start", 11, 20, { id: "b" }), // orphan, restarted at 900
      ...ran("b", 12, 900),
      line("start", 11, 30, { id: "c" }),
      line("done", 11, 40, { id: "c" }), // done, killed before its ack was reported: not restarted
    ];
    const r = check({ lines, faults: [{ t: 60, kind: "kill", pid: 11 }] });
    expect(r.kills).toEqual([{ t: 60, pid: 11, inFlight: 2 }]);
    expect(r.orphanRecoveryMs).toEqual([840]);
    expect(r.orphansNotRestarted).toBe(1);
    expect(r.lost).toEqual([]);
  });

  it("quantile uses the nearest rank", () => {
    expect(quantile([], 0.99)).toBe(0);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(quantile([1, 2, 3, 4], 0.99)).toBe(4);
  });
});

describe("ledger", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const tempDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), "jobs-ledger-"));
    dirs.push(d);
    return d;
  };

  it("skips and counts one truncated last line; a malformed line elsewhere throws", () => {
    expect(parseLedger('{"kind":"a","pid":1,"t":1}\n{"kind":"b","pi')).toMatchObject({ truncated: 1 });
    expect(parseLedger('{"kind":"a","pid":1,"t":1}\n').truncated).toBe(0);
    expect(() => parseLedger('{"kind":"a"\n{"kind":"b","pid":1,"t":1}\n')).toThrow(/not JSON/);
  });

  it("reads every file of a directory and counts the truncated tails", () => {
    const dir = tempDir();
    const a = openLedger(dir, "worker", "worker-1.ndjson");
    a.write("start", { id: "x" });
    a.close();
    appendFileSync(join(dir, "worker-1.ndjson"), '{"kind":"do');
    const b = openLedger(dir, "producer", "producer-2.ndjson");
    b.write("intent", { id: "x" });
    b.close();
    const read = readLedgers(dir);
    expect(read.files).toBe(2);
    expect(read.truncated).toBe(1);
    expect(read.lines.map((l) => l.kind).sort()).toEqual(["intent", "start"]);
    expect(read.lines[0]?.pid).toBe(process.pid);
  });

  it("keeps every line a process wrote before kill -9", async () => {
    const dir = tempDir();
    // A child appends lines in a tight loop and reports each count; SIGKILL lands mid-stream.
    const src = `const fs=require("fs");const fd=fs.openSync(${JSON.stringify(join(dir, "w.ndjson"))},"a");let n=0;
      for(;;){fs.writeSync(fd,JSON.stringify({kind:"tick",pid:process.pid,t:Date.now(),n:++n})+"\\n");if(n===2000)process.stdout.write("ready\\n");}`;
    const child = spawn(process.execPath, ["-e", src], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGKILL");
    await exited;
    const read = readLedgers(dir);
    expect(read.lines.length).toBeGreaterThanOrEqual(2000);
    // Every line up to the last is there, in order: no gap.
    const ns = read.lines.map((l) => l.n as number);
    expect(ns).toEqual(ns.map((_, i) => i + 1));
  });
});

describe("finishedThenRunAgain (a start after a succeeded line of the same key)", () => {
  const succeeded = (id: string, pid: number, t: number): LedgerLine => line("succeeded", pid, t, { id });

  it("flags a start on another worker after one had finished the job, even when a fault explains the duplicate", () => {
    const lines = [
      ...produced("a", 0),
      ...produced("b", 0),
      line("start", 11, 10, { id: "a", attempt: 1 }),
      line("done", 11, 20, { id: "a" }),
      succeeded("a", 11, 21),
      // The broker crashed after the ack and redelivered `a`: W2 runs it again.
      line("start", 12, 30, { id: "a", attempt: 1 }),
      line("done", 12, 40, { id: "a" }),
      succeeded("a", 12, 41),
      ...ran("b", 12, 50),
    ];
    const r = check({ lines, faults: [{ t: 22, until: 25, kind: "broker-crash" }] });
    expect(r.explainedDuplicates).toBe(1);
    expect(r.unexplained).toEqual([]);
    expect(r.finishedThenRunAgain).toBe(1);
    expect(r.finishedThenRunAgainSample).toEqual([{ id: "a", succeededPid: 11, succeededT: 21, startPid: 12, startT: 30 }]);
  });

  it("does not flag a rerun of a job whose worker died before its succeeded line, nor a start before that line", () => {
    const lines = [
      ...produced("a", 0),
      ...produced("b", 0),
      // a: W1 ran it to `done`, was killed before job.succeeded; W2 runs it again and finishes it.
      line("start", 11, 10, { id: "a", attempt: 1 }),
      line("done", 11, 20, { id: "a" }),
      line("start", 12, 30, { id: "a", attempt: 1 }),
      line("done", 12, 40, { id: "a" }),
      succeeded("a", 12, 41),
      // b: W2 took it over (lease lost) and started it before W1's succeeded line was written.
      line("start", 11, 10, { id: "b", attempt: 1 }),
      line("lease-lost", 11, 14, { id: "b" }),
      line("start", 12, 15, { id: "b", attempt: 1 }),
      line("done", 11, 20, { id: "b" }),
      succeeded("b", 11, 21),
      line("done", 12, 25, { id: "b" }),
    ];
    const r = check({ lines, faults: [{ t: 22, kind: "kill", pid: 11, until: 23 }] });
    expect(r.lost).toEqual([]);
    expect(r.explainedDuplicates).toBe(2);
    expect(r.finishedThenRunAgain).toBe(0);
    expect(r.finishedThenRunAgainSample).toEqual([]);
  });

  it("reads an older ledger's ack line as succeeded", () => {
    const lines = [...produced("a", 0), ...ran("a", 11, 10), line("start", 12, 30, { id: "a", attempt: 1 })];
    expect(check({ lines, faults: [] }).finishedThenRunAgain).toBe(1);
  });
});

describe("slowOrphans (R1: where a late orphan was)", () => {
  // W1 (11) runs a, b and c and is killed at 100; W2 (12) receives c and is killed at 6,100 before starting it.
  const kill = (pid: number, t: number): Fault => ({ t, kind: "kill", pid });
  const lines = [
    line("start", 11, 50, { id: "a" }),
    line("start", 11, 60, { id: "b" }),
    line("start", 11, 70, { id: "c" }),
    line("start", 11, 80, { id: "d" }),
    line("ack", 11, 90, { id: "d" }),
    // a: back in time. b: first received again 9 s after the kill. c: buffered by W2, killed; W3 runs it.
    line("recv", 13, 6_000, { id: "a", n: 2 }),
    ...ran("a", 13, 6_010),
    line("recv", 13, 9_100, { id: "b", n: 2 }),
    ...ran("b", 13, 9_110),
    line("recv", 12, 6_000, { id: "c", n: 2 }),
    line("recv", 13, 12_100, { id: "c", n: 3 }),
    ...ran("c", 13, 12_110),
  ];
  const faults = [kill(11, 100), kill(12, 6_100)];

  it("lists only the orphans slower than the bar, slowest first, each with its cause", () => {
    const slow = slowOrphans(lines, faults, 8_000);
    expect(slow.map((o) => [o.id, o.cause, o.recoveryMs])).toEqual([
      ["c", "killed-buffer", 12_010],
      ["b", "late-delivery", 9_010],
    ]);
    expect(slow[0]?.received).toEqual([
      { ms: 5_900, pid: 12, n: 2, killed: true },
      { ms: 12_000, pid: 13, n: 3, killed: false },
    ]);
  });

  it("measures a re-orphaned job per orphaning: the kill of the worker that received it again starts a second recovery", () => {
    const r = check({ lines: [...produced("c", 0), ...lines.filter((l) => l.id === "c")], faults });
    expect(r.reorphaned).toBe(1);
    // c: kill at 100 → W2 (received at 6,000) killed at 6,100 → started by W3 at 12,110.
    expect(r.orphanRecoveryMs).toEqual([6_000, 6_010]);
    expect(r.kills).toEqual([
      { t: 100, pid: 11, inFlight: 1 },
      { t: 6_100, pid: 12, inFlight: 0 },
    ]);
  });

  // g: started by W1 (its delivery 1), W1 killed at 100; delivery 2 goes to W2, killed at 5,100
  // before it wrote its recv line; delivery 3 reaches W3 at 10,100.
  const unseen = (n: number): LedgerLine[] => [
    ...produced("g", 0),
    line("recv", 11, 40, { id: "g", n: 1 }),
    line("start", 11, 50, { id: "g", attempt: 1 }),
    line("recv", 13, 10_100, { id: "g", n }),
    ...ran("g", 13, 10_110),
  ];
  const unseenFaults = [kill(11, 100), kill(12, 5_100)];

  it("takes a delivery count that skips a number no worker recorded for a delivery to a worker killed in between", () => {
    const r = check({ lines: unseen(3), faults: unseenFaults });
    expect(r.reorphaned).toBe(1);
    expect(r.orphanRecoveryMs).toEqual([5_000, 5_010]);
    expect(slowOrphans(unseen(3), unseenFaults, 8_000).map((o) => [o.id, o.cause, o.recoveryMs])).toEqual([
      ["g", "unseen-delivery", 10_010],
    ]);
  });

  it("keeps a slow orphan whole when every delivery is accounted for, or when no kill could have taken the missing one", () => {
    // Delivery 2 is the one W3 got: the broker was late, whatever else was killed.
    const late = check({ lines: unseen(2), faults: unseenFaults });
    expect(late.reorphaned).toBe(0);
    expect(late.orphanRecoveryMs).toEqual([10_010]);
    expect(slowOrphans(unseen(2), unseenFaults, 8_000).map((o) => o.cause)).toEqual(["late-delivery"]);
    // A delivery went missing, but no other worker was killed: nothing explains it.
    const alone = check({ lines: unseen(3), faults: [kill(11, 100)] });
    expect(alone.reorphaned).toBe(0);
    expect(alone.orphanRecoveryMs).toEqual([10_010]);
    // A live worker that received it and did not start it (held) explains nothing either.
    const held = [
      ...unseen(2).filter((l) => l.pid !== 13),
      line("recv", 12, 5_000, { id: "g", n: 2 }),
      line("recv", 13, 10_100, { id: "g", n: 3 }),
      ...ran("g", 13, 10_110),
    ];
    const r = check({ lines: held, faults: [kill(11, 100)] });
    expect(r.reorphaned).toBe(0);
    expect(r.orphanRecoveryMs).toEqual([10_010]);
  });

  it("calls an orphan received in time but started late held, and ignores a job acked before the kill", () => {
    const held = [line("start", 11, 50, { id: "e" }), line("recv", 13, 5_000, { id: "e", n: 2 }), ...ran("e", 13, 9_000)];
    expect(slowOrphans(held, [kill(11, 100)], 8_000).map((o) => [o.id, o.cause])).toEqual([["e", "held"]]);
    expect(slowOrphans(lines, faults, 8_000).some((o) => o.id === "d")).toBe(false);
  });
});

describe("kills with a window (signal sent → exit observed)", () => {
  it("explains a duplicate whose first start the victim wrote after the signal was sent, before it died", () => {
    // W1 (11) is signalled at 100, writes a start at 108 and is seen dead at 120; W2 runs the job again.
    const lines = [...produced("a", 0), line("start", 11, 108, { id: "a" }), ...ran("a", 12, 6_000)];
    const faults: Fault[] = [{ t: 100, until: 120, kind: "kill", pid: 11 }];
    const r = check({ lines, faults });
    expect(r.unexplained).toEqual([]);
    expect(r.explainedDuplicates).toBe(1);
    expect(r.kills).toEqual([{ t: 100, pid: 11, inFlight: 1 }]);
    expect(r.orphanRecoveryMs).toEqual([5_900]);
  });

  it("still leaves a duplicate unexplained when the first start came after the victim died", () => {
    const lines = [...produced("a", 0), ...ran("a", 11, 130), ...ran("a", 12, 6_000)];
    const faults: Fault[] = [{ t: 100, until: 120, kind: "kill", pid: 11 }];
    expect(check({ lines, faults }).unexplained.map((u) => u.id)).toEqual(["a"]);
  });
});
