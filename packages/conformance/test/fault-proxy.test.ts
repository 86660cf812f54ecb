import { randomBytes } from "node:crypto";
import { connect, createServer, type Server, type Socket } from "node:net";
import { waitFor } from "@jobs/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { createFaultProxy, type FaultProxy } from "../src/index.js";

interface Echo {
  readonly server: Server;
  readonly port: number;
  readonly sockets: Set<Socket>;
}

/** A local TCP echo server. */
async function startEcho(): Promise<Echo> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no address");
  return { server, port: address.port, sockets };
}

/** A client that records what it receives and how it ended. */
interface Client {
  readonly socket: Socket;
  received(): Buffer;
  readonly ended: { error?: NodeJS.ErrnoException; closed: boolean };
}

async function connectClient(port: number): Promise<Client> {
  const chunks: Buffer[] = [];
  const ended: { error?: NodeJS.ErrnoException; closed: boolean } = { closed: false };
  const socket = connect({ host: "127.0.0.1", port });
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  socket.on("error", (error: NodeJS.ErrnoException) => {
    ended.error = error;
  });
  socket.on("close", () => {
    ended.closed = true;
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  return { socket, received: () => Buffer.concat(chunks), ended };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(): Promise<{ echo: Echo; proxy: FaultProxy; client: () => Promise<Client> }> {
  const echo = await startEcho();
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of echo.sockets) s.destroy();
        echo.server.close(() => resolve());
      }),
  );
  const proxy = await createFaultProxy({ target: { host: "127.0.0.1", port: echo.port } });
  cleanups.push(() => proxy.close());
  const client = async (): Promise<Client> => {
    const c = await connectClient(proxy.address.port);
    cleanups.push(() => {
      c.socket.destroy();
    });
    return c;
  };
  return { echo, proxy, client };
}

describe("fault proxy", () => {
  it("listens on a free loopback port and forwards bytes both ways in pass mode", async () => {
    const { proxy, client } = await setup();
    expect(proxy.address.host).toBe("127.0.0.1");
    expect(proxy.address.port).toBeGreaterThan(0);
    expect(proxy.mode).toBe("pass");
    const c = await client();
    c.socket.write("hello through the proxy");
    await waitFor(() => c.received().toString() === "hello through the proxy", { timeout: 2_000 });
    expect(proxy.connections).toBe(1);
  });

  it("pause holds bytes without dropping any, even past the socket buffers, and resume delivers them all", async () => {
    const { proxy, client } = await setup();
    const c = await client();
    c.socket.write("before");
    await waitFor(() => c.received().toString() === "before", { timeout: 2_000 });
    proxy.pause();
    expect(proxy.mode).toBe("pause");
    // More than the socket buffers hold, so TCP backpressure is part of the test.
    const big = randomBytes(4 * 1024 * 1024);
    c.socket.write(big);
    // Bounded window: nothing may get through while paused.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(c.received().length).toBe("before".length);
    proxy.resume();
    expect(proxy.mode).toBe("pass");
    await waitFor(() => c.received().length >= "before".length + big.length, { timeout: 10_000 });
    expect(c.received().subarray("before".length).equals(big)).toBe(true);
    expect(c.ended.closed).toBe(false);
  });

  it("pause also holds bytes the target sends on its own", async () => {
    const { echo, proxy, client } = await setup();
    const c = await client();
    c.socket.write("x");
    await waitFor(() => c.received().toString() === "x" && echo.sockets.size === 1, { timeout: 2_000 });
    proxy.pause();
    const pushed = randomBytes(2 * 1024 * 1024);
    for (const socket of echo.sockets) socket.write(pushed);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(c.received().length).toBe(1);
    proxy.resume();
    await waitFor(() => c.received().length >= 1 + pushed.length, { timeout: 10_000 });
    expect(c.received().subarray(1).equals(pushed)).toBe(true);
  });

  it("holds connections opened while paused until resume", async () => {
    const { proxy, client } = await setup();
    proxy.pause();
    const c = await client();
    c.socket.write("queued");
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(c.received().length).toBe(0);
    proxy.resume();
    await waitFor(() => c.received().toString() === "queued", { timeout: 2_000 });
  });

  it("reset mode resets open connections and every new one until the mode changes", async () => {
    const { echo, proxy, client } = await setup();
    const c = await client();
    c.socket.write("ping");
    await waitFor(() => c.received().toString() === "ping", { timeout: 2_000 });
    proxy.setMode("reset");
    await waitFor(() => c.ended.closed, { timeout: 2_000 });
    expect(c.ended.error?.code).toBe("ECONNRESET");
    expect(proxy.connections).toBe(0);
    await waitFor(() => echo.sockets.size === 0, { timeout: 2_000, message: "the upstream side was not closed" });
    // New connections are accepted by the kernel, then reset at once (possibly before "connect" is seen).
    const refused = await connectClient(proxy.address.port).then(
      async (late) => {
        await waitFor(() => late.ended.closed, { timeout: 2_000 });
        return late.ended.error;
      },
      (error: NodeJS.ErrnoException) => error,
    );
    expect(refused?.code).toBe("ECONNRESET");
    proxy.setMode("pass");
    const again = await client();
    again.socket.write("pong");
    await waitFor(() => again.received().toString() === "pong", { timeout: 2_000 });
  });

  it("resetConnections resets open connections but keeps accepting new ones", async () => {
    const { proxy, client } = await setup();
    const c = await client();
    c.socket.write("one");
    await waitFor(() => c.received().toString() === "one", { timeout: 2_000 });
    proxy.resetConnections();
    await waitFor(() => c.ended.closed, { timeout: 2_000 });
    expect(c.ended.error?.code).toBe("ECONNRESET");
    expect(proxy.mode).toBe("pass");
    const next = await client();
    next.socket.write("two");
    await waitFor(() => next.received().toString() === "two", { timeout: 2_000 });
  });

  it("resets a paused connection too, dropping it (reset means the peer is gone)", async () => {
    const { proxy, client } = await setup();
    const c = await client();
    proxy.pause();
    c.socket.write("stuck");
    proxy.setMode("reset");
    await waitFor(() => c.ended.closed, { timeout: 2_000 });
    expect(c.ended.error?.code).toBe("ECONNRESET");
  });

  it("closes the client side when the target refuses the connection", async () => {
    const echo = await startEcho();
    const port = echo.port;
    await new Promise<void>((resolve) => echo.server.close(() => resolve()));
    const proxy = await createFaultProxy({ target: { host: "127.0.0.1", port } });
    cleanups.push(() => proxy.close());
    const c = await connectClient(proxy.address.port);
    cleanups.push(() => {
      c.socket.destroy();
    });
    await waitFor(() => c.ended.closed, { timeout: 2_000 });
    expect(proxy.connections).toBe(0);
  });

  it("passes a clean close (FIN) through", async () => {
    const { echo, client } = await setup();
    const c = await client();
    c.socket.end("bye");
    await waitFor(() => c.ended.closed, { timeout: 2_000 });
    expect(c.received().toString()).toBe("bye");
    expect(c.ended.error).toBeUndefined();
    await waitFor(() => echo.sockets.size === 0, { timeout: 2_000 });
  });

  it("close stops listening, ends every connection and is idempotent", async () => {
    const { proxy, client } = await setup();
    const c = await client();
    await Promise.all([proxy.close(), proxy.close()]);
    await waitFor(() => c.ended.closed, { timeout: 2_000 });
    const error = await connectClient(proxy.address.port).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(error?.code).toBe("ECONNREFUSED");
  });

  it("pauseOneWay('upstream') holds only client → target bytes; the target's own bytes still arrive", async () => {
    const { echo, proxy, client } = await setup();
    const c = await client();
    c.socket.write("a");
    await waitFor(() => c.received().toString() === "a" && echo.sockets.size === 1, { timeout: 2_000 });
    proxy.pauseOneWay("upstream");
    expect(proxy.mode).toBe("pause-upstream");
    c.socket.write("held");
    for (const socket of echo.sockets) socket.write("pushed");
    await waitFor(() => c.received().toString() === "apushed", { timeout: 2_000 });
    // Bounded window: the held direction must stay silent.
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(c.received().toString()).toBe("apushed");
    proxy.resume();
    await waitFor(() => c.received().toString() === "apushedheld", { timeout: 2_000 });
  });

  it("pauseOneWay('downstream') holds only target → client bytes; nothing is dropped", async () => {
    const { echo, proxy, client } = await setup();
    const c = await client();
    c.socket.write("a");
    await waitFor(() => c.received().toString() === "a" && echo.sockets.size === 1, { timeout: 2_000 });
    let reached = "";
    for (const socket of echo.sockets) socket.on("data", (chunk: Buffer) => (reached += chunk.toString()));
    proxy.pauseOneWay("downstream");
    expect(proxy.mode).toBe("pause-downstream");
    const big = randomBytes(2 * 1024 * 1024);
    c.socket.write("up");
    await waitFor(() => reached === "up", { timeout: 2_000, message: "client → target bytes should still flow" });
    c.socket.write(big);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(c.received().toString()).toBe("a");
    proxy.resume();
    await waitFor(() => c.received().length >= 3 + big.length, { timeout: 10_000 });
    expect(c.received().subarray(0, 3).toString()).toBe("aup");
    expect(c.received().subarray(3).equals(big)).toBe(true);
    expect(() => proxy.pauseOneWay("sideways" as "upstream")).toThrow(/direction/);
  });

  it("refuse closes the listener (new connections are refused, open ones keep flowing) until the mode changes", async () => {
    const { proxy, client } = await setup();
    const c = await client();
    proxy.setMode("refuse");
    const error = await connectClient(proxy.address.port).then(
      (late) => {
        late.socket.destroy();
        return undefined;
      },
      (e: NodeJS.ErrnoException) => e,
    );
    expect(error?.code).toBe("ECONNREFUSED");
    c.socket.write("still here");
    await waitFor(() => c.received().toString() === "still here", { timeout: 2_000 });
    proxy.setMode("pass");
    await proxy.settled();
    const again = await client();
    again.socket.write("back");
    await waitFor(() => again.received().toString() === "back", { timeout: 2_000 });
  });

  it("latency delays every chunk by at least its ms, in both directions, without reordering", async () => {
    const { proxy, client } = await setup();
    const c = await client();
    proxy.setLatency(100, 50);
    expect(proxy.latency).toEqual({ ms: 100, jitterMs: 50 });
    const sent = performance.now();
    const parts = Array.from({ length: 20 }, (_, i) => `<${i}>`);
    for (const part of parts) c.socket.write(part);
    const expected = parts.join("");
    await waitFor(() => c.received().toString() === expected, { timeout: 5_000 });
    // Up and back down: two delays of at least 100 ms each.
    expect(performance.now() - sent).toBeGreaterThanOrEqual(200);
    proxy.setLatency(0);
    const quick = performance.now();
    c.socket.write("!");
    await waitFor(() => c.received().toString() === `${expected}!`, { timeout: 2_000 });
    expect(performance.now() - quick).toBeLessThan(100);
    expect(() => proxy.setLatency(-1)).toThrow(/non-negative/);
  });

  it("rejects an unknown mode", async () => {
    const { proxy } = await setup();
    expect(() => proxy.setMode("drop" as "pass")).toThrow(/unknown fault proxy mode/);
    expect(proxy.mode).toBe("pass");
  });
});
