/**
 * The fault proxy process (RELIABILITY.md d.2) as the chaos tests drive it: forked, controlled
 * over IPC, every mode in force when its promise resolves, faults recorded for the checker.
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import { waitFor } from "@jobs/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../src/harness.js";
import { startProxy } from "../src/proxy.js";

interface Peer {
  readonly socket: Socket;
  received(): string;
  readonly ended: { error?: NodeJS.ErrnoException; closed: boolean };
}

function open(port: number): Promise<Peer> {
  let data = "";
  const ended: Peer["ended"] = { closed: false };
  const socket = connect({ host: "127.0.0.1", port });
  socket.on("data", (chunk: Buffer) => (data += chunk.toString()));
  socket.on("error", (e: NodeJS.ErrnoException) => (ended.error = e));
  socket.on("close", () => (ended.closed = true));
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve({ socket, received: () => data, ended }));
    socket.once("error", reject);
  });
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(): Promise<{ h: Harness; echo: Server; echoSockets: Set<Socket>; port: number }> {
  const echoSockets = new Set<Socket>();
  const echo = createServer((s) => {
    echoSockets.add(s);
    s.on("error", () => {});
    s.on("close", () => echoSockets.delete(s));
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
  cleanups.push(() => new Promise<void>((r) => echo.close(() => r())));
  cleanups.push(() => {
    for (const s of echoSockets) s.destroy();
  });
  const h = createHarness("proxy-process", "tcp");
  cleanups.push(() => h.close());
  const address = echo.address();
  if (address === null || typeof address === "string") throw new Error("no address");
  return { h, echo, echoSockets, port: address.port };
}

describe("fault proxy process", () => {
  it("forwards, pauses (one way and both), resets, refuses and delays on command, and records each fault", async () => {
    const { h, echoSockets, port } = await setup();
    const proxy = await startProxy(h, { host: "127.0.0.1", port }, { broker: "tcp" });
    const c = await open(proxy.port);
    cleanups.push(() => {
      c.socket.destroy();
    });
    c.socket.write("a");
    await waitFor(() => c.received() === "a", { timeout: 5_000 });

    await proxy.pause();
    c.socket.write("b");
    // Bounded window: nothing may pass while paused.
    await new Promise((r) => setTimeout(r, 150));
    expect(c.received()).toBe("a");
    await proxy.pass();
    await waitFor(() => c.received() === "ab", { timeout: 5_000 });

    await proxy.pauseOneWay("downstream");
    let reached = "";
    for (const s of echoSockets) s.on("data", (chunk: Buffer) => (reached += chunk.toString()));
    c.socket.write("c");
    await waitFor(() => reached === "c", { timeout: 5_000, message: "client → target still flows" });
    expect(c.received()).toBe("ab");
    await proxy.pass();
    await waitFor(() => c.received() === "abc", { timeout: 5_000 });

    await proxy.latency(80, 20);
    const sent = performance.now();
    c.socket.write("d");
    await waitFor(() => c.received() === "abcd", { timeout: 5_000 });
    expect(performance.now() - sent).toBeGreaterThanOrEqual(160);
    await proxy.latency(0);

    await proxy.refuse();
    await expect(open(proxy.port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    await proxy.pass();
    const d = await open(proxy.port);
    cleanups.push(() => {
      d.socket.destroy();
    });
    expect(proxy.connections).toBeGreaterThanOrEqual(1);

    await proxy.reset();
    await waitFor(() => c.ended.closed && d.ended.closed, { timeout: 5_000 });
    expect(c.ended.error?.code).toBe("ECONNRESET");
    await proxy.pass();

    const kinds = h.faults.map((f) => `${f.kind}:${f.mode}${f.until === undefined ? "" : ":window"}`);
    expect(kinds).toEqual([
      "proxy:pause",
      "proxy:pause:window",
      "proxy:pause-downstream",
      "proxy:pause-downstream:window",
      "proxy:latency 80±20 ms",
      "proxy:latency 0±0 ms",
      "proxy:refuse",
      "proxy:refuse:window",
      "proxy:reset",
      "proxy:reset:window",
    ]);
    expect(h.faults.every((f) => f.broker === "tcp")).toBe(true);
    await proxy.close();
    await expect(open(proxy.port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });
});
