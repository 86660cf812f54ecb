/**
 * Ledgers (RELIABILITY.md d.2): one append-only ndjson file per process, one synchronous
 * `write` per line. A line is in the kernel before the writer's next statement, so it survives
 * `kill -9` of the writer (fsync would only matter for a machine crash, which no test simulates).
 * The reader tolerates one truncated last line per file (a process killed mid-write) and counts it.
 */
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";

/** One ledger line: what happened, in which process, when (ms since the epoch), and its fields. */
export interface LedgerLine {
  readonly kind: string;
  readonly pid: number;
  readonly t: number;
  readonly id?: string;
  readonly [field: string]: unknown;
}

/** An open ledger of this process. */
export interface Ledger {
  /** The file it appends to. */
  readonly path: string;
  /** Appends one line `{kind, pid, t, ...fields}` with one synchronous write. */
  write(kind: string, fields?: Readonly<Record<string, unknown>>): void;
  /** Closes the file; later writes are ignored. */
  close(): void;
}

/** Lines must stay below this so concurrent appends to one file never interleave (PIPE_BUF-sized writes). */
const MAX_LINE_BYTES = 4_000;

/** Opens `<dir>/<role>-<pid>.ndjson` for appending (or `<dir>/<file>` when `file` is given). */
export function openLedger(dir: string, role: string, file?: string): Ledger {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, file ?? `${role}-${process.pid}.ndjson`);
  let fd: number | undefined = openSync(path, "a");
  return {
    path,
    write(kind, fields = {}) {
      if (fd === undefined) return;
      let line = `${JSON.stringify({ kind, pid: process.pid, t: Date.now(), ...fields })}\n`;
      if (Buffer.byteLength(line) > MAX_LINE_BYTES) {
        line = `${JSON.stringify({ kind, pid: process.pid, t: Date.now(), id: fields.id, truncatedFields: true })}\n`;
      }
      writeSync(fd, line);
    },
    close() {
      if (fd === undefined) return;
      closeSync(fd);
      fd = undefined;
    },
  };
}

/** Every line of a set of ledger files, and how many truncated last lines were skipped. */
export interface LedgerRead {
  /** Lines of every file, each file in its own order, files in name order. */
  readonly lines: LedgerLine[];
  /** Truncated last lines skipped (at most one per file). */
  readonly truncated: number;
  /** Files read. */
  readonly files: number;
}

/**
 * Parses one ledger file's text. A last line without its newline (the writer died mid-write) is
 * skipped and counted; a malformed line anywhere else throws (that is a bug, not a crash).
 */
export function parseLedger(text: string, name = "ledger"): { lines: LedgerLine[]; truncated: number } {
  const lines: LedgerLine[] = [];
  let truncated = 0;
  const parts = text.split("\n");
  const last = parts.pop() ?? "";
  if (last !== "") truncated = 1;
  for (const [i, part] of parts.entries()) {
    if (part === "") continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(part);
    } catch {
      throw new Error(`[reliability] ${name}: line ${i + 1} is not JSON: ${part.slice(0, 200)}`);
    }
    if (typeof parsed !== "object" || parsed === null || typeof (parsed as LedgerLine).kind !== "string")
      throw new Error(`[reliability] ${name}: line ${i + 1} has no kind`);
    lines.push(parsed as LedgerLine);
  }
  return { lines, truncated };
}

/** Reads every `*.ndjson` file of `dir` (none when the directory does not exist). */
export function readLedgers(dir: string): LedgerRead {
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((f) => f.endsWith(".ndjson"))
      .sort();
  } catch {
    return { lines: [], truncated: 0, files: 0 };
  }
  const lines: LedgerLine[] = [];
  let truncated = 0;
  for (const name of names) {
    const parsed = parseLedger(readFileSync(join(dir, name), "utf8"), name);
    for (const line of parsed.lines) lines.push(line);
    truncated += parsed.truncated;
  }
  return { lines, truncated, files: names.length };
}
