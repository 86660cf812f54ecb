/**
 * A TCP proxy that stands between a client and its broker and can stall or cut the connections
 * on command, to test reconnects without touching the broker itself.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

/**
 * `pass`: bytes flow both ways. `pause`: every connection is held (both sockets unpiped and paused,
 * no byte dropped; TCP backpressure does the rest) until the mode changes. `reset`: every open
 * connection is reset (RST) and new ones are reset on arrival.
 */
export type FaultProxyMode = "pass" | "pause" | "reset";

/** Options of `createFaultProxy`. */
export interface FaultProxyOptions {
  /** Where connections are forwarded: the broker. */
  readonly target: { readonly host: string; readonly port: number };
  /** Interface to listen on. @default "127.0.0.1" */
  readonly host?: string;
  /** Port to listen on. @default 0 (any free port) */
  readonly port?: number;
  /** Mode at start. @default "pass" */
  readonly mode?: FaultProxyMode;
}

/** A running fault proxy. */
export interface FaultProxy {
  /** Where clients connect instead of the target. */
  readonly address: { readonly host: string; readonly port: number };
  /** The current mode. */
  readonly mode: FaultProxyMode;
  /** Connections currently proxied. */
  readonly connections: number;
  /** Switch mode; `pass` after `pause` resumes held connections where they stopped. */
  setMode(mode: FaultProxyMode): void;
  /** Same as `setMode("pause")`. */
  pause(): void;
  /** Same as `setMode("pass")`. */
  resume(): void;
  /** Reset (RST) every open connection, keeping the mode: new connections are accepted as before. */
  resetConnections(): void;
  /** Stop listening and destroy every connection. Idempotent. */
  close(): Promise<void>;
}

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  flowing: boolean;
  done: boolean;
}

/** Starts a fault proxy in front of `options.target`; resolves once it listens. */
export async function createFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = options.target;
  let mode: FaultProxyMode = options.mode ?? "pass";
  const pairs = new Set<Pair>();
  let closing: Promise<void> | undefined;

  // Half-open allowed on both sides: a FIN travels through as a FIN, and replies still flow back.
  const server: Server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (client) => {
    if (mode === "reset" || closing !== undefined) {
      reset(client);
      return;
    }
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true });
    upstream.pause();
    const pair: Pair = { client, upstream, flowing: false, done: false };
    pairs.add(pair);
    // An error on one side resets the other; a clean close ends it (after buffered bytes are flushed).
    client.on("error", () => finish(pair, true));
    upstream.on("error", () => finish(pair, true));
    client.on("close", (hadError: boolean) => finish(pair, hadError));
    upstream.on("close", (hadError: boolean) => finish(pair, hadError));
    if (mode === "pass") flow(pair);
  });

  function flow(pair: Pair): void {
    if (pair.done || pair.flowing) return;
    pair.flowing = true;
    pair.client.pipe(pair.upstream);
    pair.upstream.pipe(pair.client);
    pair.client.resume();
    pair.upstream.resume();
  }

  function hold(pair: Pair): void {
    if (pair.done || !pair.flowing) return;
    pair.flowing = false;
    // Unpiped bytes stay in the sockets' read buffers; once those fill, TCP pushes back on the peers.
    pair.client.unpipe(pair.upstream);
    pair.upstream.unpipe(pair.client);
    pair.client.pause();
    pair.upstream.pause();
  }

  function finish(pair: Pair, hard: boolean): void {
    if (pair.done) return;
    pair.done = true;
    pairs.delete(pair);
    for (const socket of [pair.client, pair.upstream]) {
      if (socket.destroyed) continue;
      if (hard) reset(socket);
      else socket.end();
    }
  }

  function reset(socket: Socket): void {
    try {
      socket.resetAndDestroy();
    } catch {
      socket.destroy();
    }
  }

  function resetAll(): void {
    for (const pair of [...pairs]) {
      pair.done = true;
      pairs.delete(pair);
      reset(pair.client);
      reset(pair.upstream);
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address();
  if (bound === null || typeof bound === "string") throw new Error("[jobs] [conformance] fault proxy has no TCP address");
  const address = { host: options.host ?? "127.0.0.1", port: bound.port };

  const proxy: FaultProxy = {
    address,
    get mode() {
      return mode;
    },
    get connections() {
      return pairs.size;
    },
    setMode(next) {
      if (next !== "pass" && next !== "pause" && next !== "reset")
        throw new Error(`[jobs] [conformance] unknown fault proxy mode ${String(next)}`);
      mode = next;
      if (next === "reset") resetAll();
      else {
        for (const pair of pairs) {
          if (next === "pass") flow(pair);
          else hold(pair);
        }
      }
    },
    pause() {
      proxy.setMode("pause");
    },
    resume() {
      proxy.setMode("pass");
    },
    resetConnections() {
      resetAll();
    },
    close() {
      if (closing === undefined) {
        closing = new Promise<void>((resolve) => {
          server.close(() => resolve());
          for (const pair of [...pairs]) {
            pair.done = true;
            pairs.delete(pair);
            pair.client.destroy();
            pair.upstream.destroy();
          }
        });
      }
      return closing;
    },
  };
  return proxy;
}
