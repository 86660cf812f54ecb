import { createConnection } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { brokerUrlFromEnv, freePort, type PrivateServer, startPrivateServer, waitForPort } from "../src/index.js";

/** One RESP command over a fresh socket; resolves to the raw reply. */
function redisCommand(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let reply = "";
    socket.on("data", (chunk) => {
      reply += chunk.toString();
      if (reply.endsWith("\r\n")) {
        socket.end();
        resolve(reply);
      }
    });
    socket.once("error", reject);
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`);
  });
}

describe("brokerUrlFromEnv", () => {
  const saved = { ...process.env };
  afterAll(() => {
    process.env = saved;
  });

  it("returns the URL when set, undefined when not, and throws when JOBS_REQUIRE_BROKERS=1 forbids skipping", () => {
    process.env.JOBS_TEST_URL_X = "redis://127.0.0.1:1";
    expect(brokerUrlFromEnv("JOBS_TEST_URL_X")).toBe("redis://127.0.0.1:1");
    delete process.env.JOBS_TEST_URL_X;
    process.env.JOBS_REQUIRE_BROKERS = "0";
    expect(brokerUrlFromEnv("JOBS_TEST_URL_X")).toBeUndefined();
    process.env.JOBS_REQUIRE_BROKERS = "1";
    expect(() => brokerUrlFromEnv("JOBS_TEST_URL_X")).toThrow(/JOBS_TEST_URL_X is not set/);
  });
});

describe("startPrivateServer (a private redis-server)", () => {
  let server: PrivateServer | undefined;
  afterAll(async () => {
    await server?.stop();
  });

  it("starts on its own port, survives kill -9 with its data directory, and stops for good", async () => {
    server = await startPrivateServer({
      command: "redis-server",
      args: ({ port, dir }) => [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
      ],
      // Ready once it answers: after a restart it replies LOADING while it replays its AOF.
      ready: async ({ port }) => {
        await waitForPort("127.0.0.1", port, 30_000);
        while ((await redisCommand(port, "PING")) !== "+PONG\r\n") await new Promise((r) => setTimeout(r, 20));
      },
    });
    expect(server.port).not.toBe(6379);
    expect(await redisCommand(server.port, "SET", "k", "v")).toBe("+OK\r\n");
    await server.restart("SIGKILL");
    expect(await redisCommand(server.port, "GET", "k")).toBe("$1\r\nv\r\n");
    await server.kill();
    await expect(waitForPort("127.0.0.1", server.port, 300)).rejects.toThrow(/nothing listens/);
  });

  it("freePort gives a port nothing listens on", async () => {
    const port = await freePort();
    await expect(waitForPort("127.0.0.1", port, 100)).rejects.toThrow(/nothing listens/);
  });
});
