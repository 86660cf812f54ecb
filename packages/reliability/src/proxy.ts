/**
 * The orchestrator's handle on a fault proxy process (RELIABILITY.md d.2): modes pass, pause,
 * pauseOneWay(direction), reset, refuse and latency(ms, jitter), each resolved once the proxy
 * process confirms it is in force, and each recorded as a fault in the harness's `faults.ndjson`
 * (a point when it starts, a window `{t, until}` when the proxy goes back to `pass`).
 */
import type { Harness, Proc } from "./harness.js";
import type { ChildMessage, ProxyCommand } from "./processes/params.js";

/** A proxy mode (see `@jobs/conformance`'s `FaultProxyMode`). */
export type ProxyMode = Extract<ProxyCommand, { type: "mode" }>["mode"];

/** A fault proxy running in its own process. */
export interface ProxyProcess {
  /** Clients connect here (127.0.0.1) instead of the broker. */
  readonly port: number;
  readonly pid: number;
  /** The mode in force. */
  readonly mode: ProxyMode;
  /** Bytes flow both ways; closes the current fault window. */
  pass(): Promise<void>;
  /** Hold every connection (both directions), dropping nothing. */
  pause(): Promise<void>;
  /** Hold one direction: `upstream` (client → broker) or `downstream` (broker → client). */
  pauseOneWay(direction: "upstream" | "downstream"): Promise<void>;
  /** RST every connection and every new one until the mode changes. */
  reset(): Promise<void>;
  /** RST the open connections once; new ones are accepted as before. */
  resetConnections(): Promise<void>;
  /** Close the listener (connection refused) until the mode changes. */
  refuse(): Promise<void>;
  /** Delay every chunk by `ms` + U(0, jitterMs) in each direction, order kept; 0 turns it off. */
  latency(ms: number, jitterMs?: number): Promise<void>;
  /** Number of proxied connections at the last acknowledged command. */
  readonly connections: number;
  /** Stops the proxy process. */
  close(): Promise<void>;
}

/** Forks a fault proxy process in front of `target` and resolves once it listens. */
export async function startProxy(
  harness: Harness,
  target: { readonly host: string; readonly port: number },
  options: { readonly port?: number; readonly broker?: string } = {},
): Promise<ProxyProcess> {
  const proc: Proc = harness.forkRole("proxy", { target, ...(options.port === undefined ? {} : { port: options.port }) });
  const port = await new Promise<number>((resolve, reject) => {
    const onMessage = (message: ChildMessage): void => {
      if (message.type === "ready" && message.port !== undefined) {
        proc.child.off("message", onMessage);
        resolve(message.port);
      }
    };
    proc.child.on("message", onMessage);
    void proc.exited.then(() => reject(new Error(`[reliability] the proxy process exited before it listened:\n${proc.output()}`)));
  });
  let nextId = 1;
  let mode: ProxyMode = "pass";
  let windowStart: { t: number; mode: string } | undefined;
  let connections = 0;
  const broker = options.broker === undefined ? {} : { broker: options.broker };

  const command = (cmd: ProxyCommand): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (!proc.alive) {
        reject(new Error("[reliability] the proxy process is not running"));
        return;
      }
      const onMessage = (message: ChildMessage): void => {
        if (message.type !== "ack" || message.id !== cmd.id) return;
        proc.child.off("message", onMessage);
        connections = message.connections;
        if (message.error !== undefined) reject(new Error(`[reliability] proxy: ${message.error}`));
        else resolve();
      };
      proc.child.on("message", onMessage);
      harness.send(proc, cmd);
    });

  const setMode = async (next: ProxyMode): Promise<void> => {
    await command({ type: "mode", id: nextId++, mode: next });
    const now = Date.now();
    if (windowStart !== undefined && next !== mode) {
      harness.fault("proxy", { t: windowStart.t, until: now, mode: windowStart.mode, ...broker });
      windowStart = undefined;
    }
    if (next !== "pass" && next !== mode) {
      harness.fault("proxy", { t: now, mode: next, ...broker });
      windowStart = { t: now, mode: next };
    }
    mode = next;
  };

  return {
    port,
    pid: proc.pid,
    get mode() {
      return mode;
    },
    get connections() {
      return connections;
    },
    pass: () => setMode("pass"),
    pause: () => setMode("pause"),
    pauseOneWay: (direction) => setMode(direction === "upstream" ? "pause-upstream" : "pause-downstream"),
    reset: () => setMode("reset"),
    refuse: () => setMode("refuse"),
    async resetConnections() {
      await command({ type: "reset-connections", id: nextId++ });
      harness.fault("proxy", { mode: "reset-connections", ...broker });
    },
    async latency(ms, jitterMs = 0) {
      await command({ type: "latency", id: nextId++, ms, jitterMs });
      harness.fault("proxy", { mode: `latency ${ms}±${jitterMs} ms`, ...broker });
    },
    async close() {
      if (windowStart !== undefined) harness.fault("proxy", { t: windowStart.t, until: Date.now(), mode: windowStart.mode, ...broker });
      windowStart = undefined;
      if (!proc.alive) return;
      harness.send(proc, { type: "close" });
      await proc.exited;
    },
  };
}
