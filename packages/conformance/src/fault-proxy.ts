/**
 * A TCP proxy that stands between a client and its broker and can stall or cut the connections
 * on command, to test reconnects without touching the broker itself.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

/**
 * `pass`: bytes flow both ways. `pause`: every connection is held (both directions stop reading,
 * no byte dropped; TCP backpressure does the rest) until the mode changes. `pause-upstream` /
 * `pause-downstream`: only client → target / target → client bytes are held (a one-way partition).
 * `reset`: every open connection is reset (RST) and new ones are reset on arrival. `refuse`: the
 * listener is closed (new connections are refused; open ones keep flowing) until the mode changes.
 */
export type FaultProxyMode = "pass" | "pause" | "pause-upstream" | "pause-downstream" | "reset" | "refuse";

const MODES: readonly FaultProxyMode[] = ["pass", "pause", "pause-upstream", "pause-downstream", "reset", "refuse"];

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
  /** Added delay of every chunk, each direction: `ms` plus up to `jitterMs` (order is kept). */
  readonly latency: { readonly ms: number; readonly jitterMs: number };
  /** Connections currently proxied. */
  readonly connections: number;
  /**
   * Switch mode; `pass` after a pause resumes held connections where they stopped. Every mode is
   * in force on return except leaving `refuse`, which listens again: await `settled()` for that.
   */
  setMode(mode: FaultProxyMode): void;
  /** Resolves once the last mode change is in force (the listener is back after `refuse`); rejects if it cannot listen again. */
  settled(): Promise<void>;
  /** Same as `setMode("pause")`. */
  pause(): void;
  /** Hold the bytes of one direction only: `upstream` (client → target) or `downstream` (target → client). */
  pauseOneWay(direction: "upstream" | "downstream"): void;
  /** Same as `setMode("pass")`. */
  resume(): void;
  /** Delay every chunk by `ms` plus a uniform random extra up to `jitterMs`, in both directions; 0 turns it off. */
  setLatency(ms: number, jitterMs?: number): void;
  /** Reset (RST) every open connection, keeping the mode: new connections are accepted as before. */
  resetConnections(): void;
  /** Stop listening and destroy every connection. Idempotent. */
  close(): Promise<void>;
}

/** One direction of a connection: bytes read from `from` are written to `to`, maybe later. */
interface Link {
  readonly from: Socket;
  readonly to: Socket;
  /** Held by a pause: `from` is not read and queued chunks wait. */
  held: boolean;
  /** Waiting for `to` to drain. */
  blocked: boolean;
  /** `from` ended (FIN): end `to` once every queued chunk is written. */
  ended: boolean;
  endSent: boolean;
  /** Chunks delayed by latency, in order, with their due times (performance.now()). */
  readonly queue: { readonly chunk: Buffer; readonly due: number }[];
  lastDue: number;
  timer: NodeJS.Timeout | undefined;
}

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  readonly up: Link;
  readonly down: Link;
  done: boolean;
}

/** Starts a fault proxy in front of `options.target`; resolves once it listens. */
export async function createFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = options.target;
  const host = options.host ?? "127.0.0.1";
  let mode: FaultProxyMode = options.mode ?? "pass";
  const latency = { ms: 0, jitterMs: 0 };
  const pairs = new Set<Pair>();
  let closing: Promise<void> | undefined;

  const delay = (): number => (latency.ms === 0 && latency.jitterMs === 0 ? 0 : latency.ms + Math.random() * latency.jitterMs);

  function schedule(link: Link): void {
    if (link.held || link.blocked || link.timer !== undefined) return;
    const head = link.queue[0];
    if (head === undefined) {
      if (link.ended && !link.endSent && !link.to.destroyed) {
        link.endSent = true;
        link.to.end();
      }
      return;
    }
    link.timer = setTimeout(
      () => {
        link.timer = undefined;
        while (!link.held && !link.blocked) {
          const next = link.queue[0];
          if (next === undefined || next.due > performance.now()) break;
          link.queue.shift();
          write(link, next.chunk);
        }
        schedule(link);
      },
      Math.max(0, head.due - performance.now()),
    );
  }

  function write(link: Link, chunk: Buffer): void {
    if (link.to.destroyed) return;
    if (!link.to.write(chunk)) {
      link.blocked = true;
      link.from.pause();
      link.to.once("drain", () => {
        link.blocked = false;
        if (!link.held) link.from.resume();
        schedule(link);
      });
    }
  }

  function makeLink(from: Socket, to: Socket): Link {
    const link: Link = { from, to, held: true, blocked: false, ended: false, endSent: false, queue: [], lastDue: 0, timer: undefined };
    from.on("data", (chunk: Buffer) => {
      const ms = delay();
      if (ms === 0 && link.queue.length === 0 && !link.held && !link.blocked) {
        write(link, chunk);
        return;
      }
      // Never reorder: a chunk is due no earlier than the one before it.
      link.lastDue = Math.max(link.lastDue, performance.now() + ms);
      link.queue.push({ chunk, due: link.lastDue });
      schedule(link);
    });
    from.on("end", () => {
      link.ended = true;
      schedule(link);
    });
    return link;
  }

  function hold(link: Link): void {
    if (link.held) return;
    link.held = true;
    // Unread bytes stay in the socket; once its buffers fill, TCP pushes back on the peer.
    link.from.pause();
    if (link.timer !== undefined) clearTimeout(link.timer);
    link.timer = undefined;
  }

  function release(link: Link): void {
    if (!link.held) return;
    link.held = false;
    if (!link.blocked) link.from.resume();
    schedule(link);
  }

  function apply(pair: Pair): void {
    if (pair.done) return;
    const holdUp = mode === "pause" || mode === "pause-upstream";
    const holdDown = mode === "pause" || mode === "pause-downstream";
    if (holdUp) hold(pair.up);
    else release(pair.up);
    if (holdDown) hold(pair.down);
    else release(pair.down);
  }

  const onConnection = (client: Socket): void => {
    if (mode === "reset" || closing !== undefined) {
      reset(client);
      return;
    }
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true });
    upstream.pause();
    const pair: Pair = { client, upstream, up: makeLink(client, upstream), down: makeLink(upstream, client), done: false };
    pairs.add(pair);
    // An error on one side resets the other; a clean close ends it (after buffered bytes are flushed).
    client.on("error", () => finish(pair, true));
    upstream.on("error", () => finish(pair, true));
    client.on("close", (hadError: boolean) => finish(pair, hadError));
    upstream.on("close", (hadError: boolean) => finish(pair, hadError));
    apply(pair);
  };

  function finish(pair: Pair, hard: boolean): void {
    if (pair.done) return;
    pair.done = true;
    pairs.delete(pair);
    for (const link of [pair.up, pair.down]) if (link.timer !== undefined) clearTimeout(link.timer);
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
      for (const link of [pair.up, pair.down]) if (link.timer !== undefined) clearTimeout(link.timer);
      reset(pair.client);
      reset(pair.upstream);
    }
  }

  // Half-open allowed on both sides: a FIN travels through as a FIN, and replies still flow back.
  const listen = (port: number): Promise<Server> =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer({ pauseOnConnect: true, allowHalfOpen: true }, onConnection);
      s.once("error", reject);
      s.listen(port, host, () => {
        s.off("error", reject);
        resolve(s);
      });
    });

  let server: Server | undefined = await listen(options.port ?? 0);
  let relisten: Promise<void> | undefined;
  let relistenError: unknown;
  const bound = server.address();
  if (bound === null || typeof bound === "string") throw new Error("[jobs] [conformance] fault proxy has no TCP address");
  const address = { host, port: bound.port };
  if (mode === "refuse") {
    server.close();
    server = undefined;
  }

  const proxy: FaultProxy = {
    address,
    get mode() {
      return mode;
    },
    get latency() {
      return { ...latency };
    },
    get connections() {
      return pairs.size;
    },
    setMode(next) {
      if (!MODES.includes(next)) throw new Error(`[jobs] [conformance] unknown fault proxy mode ${String(next)}`);
      if (closing !== undefined) return;
      mode = next;
      if (next === "reset") resetAll();
      else for (const pair of pairs) apply(pair);
      if (next === "refuse" && server !== undefined) {
        // Stops accepting at once; open connections are left alone.
        server.close();
        server = undefined;
      } else if (next !== "refuse" && server === undefined) {
        relistenError = undefined;
        relisten ??= listen(address.port).then(
          (s) => {
            relisten = undefined;
            if (closing !== undefined || mode === "refuse") s.close();
            else server = s;
          },
          (error: unknown) => {
            relisten = undefined;
            relistenError = error;
            throw error;
          },
        );
        // Kept for `settled()`; never an unhandled rejection on its own.
        relisten.catch(() => {});
      }
    },
    settled() {
      if (relisten !== undefined) return relisten;
      return relistenError === undefined ? Promise.resolve() : Promise.reject(relistenError);
    },
    pause() {
      proxy.setMode("pause");
    },
    pauseOneWay(direction) {
      if (direction !== "upstream" && direction !== "downstream")
        throw new Error(`[jobs] [conformance] unknown fault proxy direction ${String(direction)}`);
      proxy.setMode(direction === "upstream" ? "pause-upstream" : "pause-downstream");
    },
    resume() {
      proxy.setMode("pass");
    },
    setLatency(ms, jitterMs = 0) {
      if (!(Number.isFinite(ms) && ms >= 0 && Number.isFinite(jitterMs) && jitterMs >= 0))
        throw new Error(`[jobs] [conformance] latency must be finite and non-negative, got ${ms} ms ± ${jitterMs} ms`);
      latency.ms = ms;
      latency.jitterMs = jitterMs;
    },
    resetConnections() {
      resetAll();
    },
    close() {
      if (closing === undefined) {
        const s = server;
        server = undefined;
        closing = new Promise<void>((resolve) => {
          if (s === undefined) resolve();
          else s.close(() => resolve());
          for (const pair of [...pairs]) {
            pair.done = true;
            pairs.delete(pair);
            for (const link of [pair.up, pair.down]) if (link.timer !== undefined) clearTimeout(link.timer);
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
