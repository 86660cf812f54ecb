/**
 * Private instances of the brokers the `@jobs` adapters target, for tests that crash, restart or
 * reconfigure a broker: each on free ports with its own data directory, never the machine's own.
 */
import { execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, type PrivateServer, startPrivateServer, waitForPort } from "./servers.js";

/** Arguments of a private redis-server: its own port and directory, loopback only, no RDB snapshots, then `extra`. */
export const redisServerArgs = (port: number, dir: string, extra: readonly string[] = []): string[] => [
  "--port",
  String(port),
  "--bind",
  "127.0.0.1",
  "--dir",
  dir,
  "--save",
  "",
  ...extra,
];

/**
 * A private `redis-server`. Without `extra` it keeps nothing on disk; pass e.g.
 * `["--appendonly", "yes", "--appendfsync", "always"]` for a server that survives kill -9.
 */
export function startPrivateRedis(extra: readonly string[] = []): Promise<PrivateServer> {
  return startPrivateServer({ command: "redis-server", args: ({ port, dir }) => redisServerArgs(port, dir, extra) });
}

/** A private `nats-server -js` on its own port and store directory, ready when its port accepts connections. */
export function startPrivateNats(extraArgs: readonly string[] = []): Promise<PrivateServer> {
  return startPrivateServer({
    command: "nats-server",
    args: ({ port, dir }) => ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir, ...extraArgs],
    ready: ({ port }) => waitForPort("127.0.0.1", port, 30_000),
  });
}

const RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const RABBITMQ_CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl";

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  if (statSync(path).isDirectory()) for (const entry of readdirSync(path)) chownTree(join(path, entry), uid, gid);
}

/** Settings of a private RabbitMQ node. */
export interface PrivateRabbitMQOptions {
  /** `consumer_timeout` of the node, in ms. @default 1800000 */
  readonly consumerTimeoutMs?: number;
}

/** A private RabbitMQ node and its AMQP URL. */
export interface PrivateRabbitMQ extends PrivateServer {
  /** amqp://guest:guest@127.0.0.1:<port> */
  readonly url: string;
  /** Runs `rabbitmqctl` against this node (never the machine's). */
  ctl(...args: string[]): string;
}

/**
 * Starts a private RabbitMQ node on free ports with its data, logs and config in a fresh directory.
 * As root it runs as the `rabbitmq` user (setpriv, same process group, so `kill` reaches beam.smp).
 */
export async function startPrivateRabbitMQ(options: PrivateRabbitMQOptions = {}): Promise<PrivateRabbitMQ> {
  const distPort = await freePort();
  const root = process.getuid?.() === 0;
  const ids = root
    ? { uid: Number(execFileSync("id", ["-u", "rabbitmq"]).toString()), gid: Number(execFileSync("id", ["-g", "rabbitmq"]).toString()) }
    : undefined;
  const server = await startPrivateServer({
    command: root ? "setpriv" : RABBITMQ_SERVER,
    args: () => (root ? ["--reuid=rabbitmq", "--regid=rabbitmq", "--init-groups", RABBITMQ_SERVER] : []),
    env: ({ port, dir }) => {
      mkdirSync(join(dir, "mnesia"), { recursive: true });
      mkdirSync(join(dir, "log"), { recursive: true });
      writeFileSync(join(dir, "rabbitmq.conf"), `consumer_timeout = ${options.consumerTimeoutMs ?? 1_800_000}\n`);
      // The channel tick evaluates consumer timeouts; every 60 s by default.
      writeFileSync(join(dir, "advanced.config"), "[{rabbit, [{channel_tick_interval, 500}]}].\n");
      writeFileSync(join(dir, "enabled_plugins"), "[].\n");
      writeFileSync(join(dir, "rabbitmq-env.conf"), "");
      if (ids !== undefined) chownTree(dir, ids.uid, ids.gid);
      return {
        RABBITMQ_NODENAME: `jobs-test-${port}@localhost`,
        RABBITMQ_NODE_IP_ADDRESS: "127.0.0.1",
        RABBITMQ_NODE_PORT: String(port),
        RABBITMQ_DIST_PORT: String(distPort),
        RABBITMQ_MNESIA_BASE: join(dir, "mnesia"),
        RABBITMQ_LOG_BASE: join(dir, "log"),
        RABBITMQ_CONFIG_FILE: join(dir, "rabbitmq.conf"),
        RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, "advanced.config"),
        RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, "enabled_plugins"),
        RABBITMQ_CONF_ENV_FILE: join(dir, "rabbitmq-env.conf"),
        RABBITMQ_PID_FILE: join(dir, "pid"),
        ...(root ? { HOME: "/var/lib/rabbitmq" } : {}),
      };
    },
    startTimeoutMs: 90_000,
  });
  const ctl = (...args: string[]): string => {
    const full = ["-n", `jobs-test-${server.port}@localhost`, ...args];
    const [command, argv] = root
      ? ["setpriv", ["--reuid=rabbitmq", "--regid=rabbitmq", "--init-groups", RABBITMQ_CTL, ...full]]
      : [RABBITMQ_CTL, full];
    return execFileSync(command, argv, {
      env: { ...process.env, ...(root ? { HOME: "/var/lib/rabbitmq" } : {}) },
      timeout: 60_000,
    }).toString();
  };
  return Object.assign(server, { url: `amqp://guest:guest@127.0.0.1:${server.port}`, ctl });
}

/** A private PostgreSQL server and the URL of its `postgres` database. */
export interface PrivatePostgres extends PrivateServer {
  /** postgres://postgres:<password>@127.0.0.1:<port>/postgres */
  readonly url: string;
  /** The password of the `postgres` user (TCP connections need it: scram-sha-256). */
  readonly password: string;
}

/**
 * Starts a private PostgreSQL server (initdb into a fresh directory, then `postgres` on a free
 * port, loopback only) whose TCP connections need a password. As root, it runs as the
 * `postgres` user (setpriv), as PostgreSQL refuses to run as root.
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const root = process.getuid?.() === 0;
  const ids = root
    ? { uid: Number(execFileSync("id", ["-u", "postgres"]).toString()), gid: Number(execFileSync("id", ["-g", "postgres"]).toString()) }
    : undefined;
  const asPostgres = (command: string, args: string[]): [string, string[]] =>
    root ? ["setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", command, ...args]] : [command, args];
  const password = `pw-${Math.random().toString(36).slice(2, 12)}`;
  const [command, prefix] = asPostgres("postgres", []);
  const server = await startPrivateServer({
    command,
    args: ({ port, dir }) => [
      ...prefix,
      "-D",
      join(dir, "data"),
      "-p",
      String(port),
      "-k",
      dir,
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "fsync=off",
    ],
    env: ({ dir }) => {
      const data = join(dir, "data");
      if (!existsSync(data)) {
        writeFileSync(join(dir, "pw"), `${password}\n`);
        if (ids !== undefined) chownTree(dir, ids.uid, ids.gid);
        const [initdb, initArgs] = asPostgres("initdb", [
          "-D",
          data,
          "-U",
          "postgres",
          "--auth-local=trust",
          "--auth-host=scram-sha-256",
          `--pwfile=${join(dir, "pw")}`,
          "--no-sync",
        ]);
        execFileSync(initdb, initArgs, { stdio: "ignore", timeout: 60_000 });
      }
      return {};
    },
    ready: async ({ port }) => {
      await waitForPort("127.0.0.1", port, 30_000);
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          execFileSync("pg_isready", ["-q", "-h", "127.0.0.1", "-p", String(port)], { stdio: "ignore", timeout: 5_000 });
          return;
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
  });
  return Object.assign(server, { url: `postgres://postgres:${password}@127.0.0.1:${server.port}/postgres`, password });
}
