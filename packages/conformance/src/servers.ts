/**
 * Helpers for adapter test files: where the broker is (from the environment), and private broker
 * processes that a test may kill and restart without touching the machine's own brokers.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * The broker URL in `process.env[variable]`, or `undefined` when it is not set (the adapter's
 * suite is then skipped by name). When `JOBS_REQUIRE_BROKERS=1` (CI), a missing URL throws
 * instead, so a broker that is not configured fails the run rather than skipping it.
 */
export function brokerUrlFromEnv(variable: string): string | undefined {
  const value = process.env[variable];
  if (value !== undefined && value !== "") return value;
  if (process.env.JOBS_REQUIRE_BROKERS === "1") {
    throw new Error(`[jobs] ${variable} is not set, and JOBS_REQUIRE_BROKERS=1 forbids skipping this broker's tests`);
  }
  return undefined;
}

/** A free TCP port on 127.0.0.1 (the OS picks it; another process could still take it before use). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === "object") resolve(address.port);
        else reject(new Error("no port assigned"));
      });
    });
  });
}

/** Whether something accepts a TCP connection on host:port right now. */
function acceptsConnections(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Resolves once something accepts TCP connections on host:port, polling; rejects after `timeoutMs`. */
export async function waitForPort(host: string, port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const open = await acceptsConnections(host, port);
    if (open) return;
    if (performance.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    // Polling for readiness, not waiting for an outcome.
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Resolves once nothing accepts TCP connections on host:port any more, polling; rejects after `timeoutMs`. */
async function waitForPortClosed(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const open = await acceptsConnections(host, port);
    if (!open) return;
    if (performance.now() > deadline)
      throw new Error(`${host}:${port} still accepts connections ${timeoutMs} ms after the server was killed`);
    // Polling for the port to close, not waiting for an outcome.
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** How to run a private broker server. */
export interface PrivateServerOptions {
  /** Executable, e.g. "redis-server". */
  readonly command: string;
  /** Arguments, built from the port and data directory the helper chose. */
  readonly args: (ctx: { readonly port: number; readonly dir: string }) => readonly string[];
  /** Extra environment variables, built the same way. @default {} */
  readonly env?: (ctx: { readonly port: number; readonly dir: string }) => Readonly<Record<string, string>>;
  /**
   * Resolves once the server is ready (default: its port accepts TCP connections). Called after
   * every start and restart.
   */
  readonly ready?: (ctx: { readonly port: number; readonly dir: string }) => Promise<void>;
  /** Port to listen on. @default a free port */
  readonly port?: number;
  /** How long a start may take before it fails, in ms. @default 60000 */
  readonly startTimeoutMs?: number;
}

/** A broker process owned by a test: its own port and data directory, never the machine's broker. */
export interface PrivateServer {
  /** The port it listens on (kept across restarts). */
  readonly port: number;
  /** Its data directory (kept across restarts, removed by `stop`). */
  readonly dir: string;
  /** Kill the process with the signal (SIGKILL by default: a crash) and wait for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Start it again on the same port and directory; resolves when it is ready. */
  start(): Promise<void>;
  /** `kill(signal)` then `start()`. */
  restart(signal?: NodeJS.Signals): Promise<void>;
  /** Kill it for good and remove its directory. */
  stop(): Promise<void>;
}

/** Starts a private broker server and resolves once it is ready. */
export async function startPrivateServer(options: PrivateServerOptions): Promise<PrivateServer> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), `jobs-${options.command.replace(/[^a-z0-9]/gi, "")}-`));
  const ctx = { port, dir };
  const timeout = options.startTimeoutMs ?? 60_000;
  let child: ChildProcess | undefined;
  let output = "";

  const exited = (proc: ChildProcess): Promise<void> =>
    proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : new Promise((r) => proc.once("exit", () => r()));

  const start = async (): Promise<void> => {
    output = "";
    const proc = spawn(options.command, [...options.args(ctx)], {
      env: { ...process.env, ...(options.env?.(ctx) ?? {}) },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    child = proc;
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-4000);
    };
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
    const failed = new Promise<never>((_, reject) => {
      proc.once("error", reject);
      proc.once("exit", (code, signal) =>
        reject(new Error(`${options.command} exited early (${code ?? signal}) on port ${port}:\n${output}`)),
      );
    });
    failed.catch(() => {});
    const ready = options.ready ? options.ready(ctx) : waitForPort("127.0.0.1", port, timeout);
    await Promise.race([ready, failed]);
    proc.removeAllListeners("exit");
  };

  const kill = async (signal: NodeJS.Signals = "SIGKILL"): Promise<void> => {
    const proc = child;
    if (proc === undefined || proc.pid === undefined) return;
    const done = exited(proc);
    try {
      // The whole process group: some servers (RabbitMQ) fork helpers.
      process.kill(-proc.pid, signal);
    } catch {
      proc.kill(signal);
    }
    await done;
    child = undefined;
    // The group leader may exit before a forked server process has released its port (RabbitMQ's
    // beam.smp runs under a shell script): a restart must not mistake the dying server for the new one.
    await waitForPortClosed("127.0.0.1", port, timeout);
  };

  await start();
  return {
    port,
    dir,
    kill,
    start,
    async restart(signal) {
      await kill(signal);
      await start();
    },
    async stop() {
      await kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
