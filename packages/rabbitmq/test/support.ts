/**
 * Test support: the broker URL from the environment, unique prefixes so runs never share objects,
 * clean-up of what a run declared, and a private RabbitMQ node that tests may kill and restart
 * (its own node name, ports and directories; never the machine's `rabbit@localhost`).
 */

import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, type PrivateServer, startPrivateServer } from "@jobs/conformance";
import type { Broker } from "@jobs/core";
import amqp from "amqplib";
import { createRabbitMQBroker, type RabbitMQBroker, type RabbitMQBrokerOptions } from "../src/index.js";

/** A prefix no other run uses. */
export function uniquePrefix(tag: string): string {
  return `jobs-test-${tag}-${randomBytes(3).toString("hex")}.`;
}

/** Brokers of one test file: records every queue they touch, and deletes those queues and the ladder exchanges at the end. */
export class Tracker {
  readonly queues: Set<string> = new Set();
  readonly levels: number;
  constructor(
    readonly url: string,
    readonly prefix: string,
    readonly options: Partial<RabbitMQBrokerOptions> = {},
  ) {
    this.levels = options.delayLevels ?? 16;
  }

  /** A new broker on `url` (or another endpoint) whose queue names are recorded. */
  broker(options: Partial<RabbitMQBrokerOptions> = {}, endpoint?: { readonly host: string; readonly port: number }): RabbitMQBroker {
    let url = this.url;
    if (endpoint !== undefined) {
      const u = new URL(this.url);
      u.hostname = endpoint.host;
      u.port = String(endpoint.port);
      url = u.toString();
    }
    const broker = createRabbitMQBroker({
      url,
      prefix: this.prefix,
      heartbeat: "2s",
      requestTimeout: "5s",
      maxReconnectDelay: "500ms",
      ...this.options,
      ...options,
    });
    const seen = (queue: string): void => {
      this.queues.add(queue);
    };
    const wrapped: RabbitMQBroker = {
      name: broker.name,
      capabilities: broker.capabilities,
      on: broker.on,
      publish: (q, m) => {
        seen(q);
        return broker.publish(q, m);
      },
      consume: (q, o, d) => {
        seen(q);
        return broker.consume(q, o, d);
      },
      counts: (q) => {
        seen(q);
        return broker.counts(q);
      },
      listDeadLetters: (q, o) => broker.listDeadLetters(q, o),
      removeDeadLetters: (q, k) => broker.removeDeadLetters(q, k),
      purge: (q) => broker.purge(q),
      deleteQueue: (q) => broker.deleteQueue(q),
      close: () => broker.close(),
    };
    return wrapped;
  }

  /** Deletes every queue recorded and the ladder exchanges of the prefix. */
  async cleanUp(): Promise<void> {
    const cleaner = this.broker();
    try {
      for (const q of this.queues) await cleaner.deleteQueue(q);
    } finally {
      await cleaner.close();
    }
    const conn = await amqp.connect(this.url);
    try {
      const ch = await conn.createChannel();
      for (let i = 0; i < this.levels; i++) await ch.deleteExchange(`${this.prefix}delay.${i}`);
      await ch.deleteExchange(`${this.prefix}delay.out`);
    } finally {
      await conn.close();
    }
  }
}

/** Closes brokers at the end of a test. */
export function closeAll(brokers: readonly Broker[]): Promise<unknown> {
  return Promise.allSettled(brokers.map((b) => b.close()));
}

const RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const RABBITMQ_CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl";

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  if (statSync(path).isDirectory()) for (const entry of readdirSync(path)) chownTree(join(path, entry), uid, gid);
}

/** Settings of a private node. */
export interface PrivateRabbitOptions {
  /** `consumer_timeout` of the node, in ms. @default 1800000 */
  readonly consumerTimeoutMs?: number;
}

/** A private RabbitMQ node and its AMQP URL. */
export interface PrivateRabbit extends PrivateServer {
  /** amqp://guest:guest@127.0.0.1:<port> */
  readonly url: string;
  /** Runs `rabbitmqctl` against this node (never the machine's). */
  ctl(...args: string[]): string;
}

/**
 * Starts a private RabbitMQ node on free ports with its data, logs and config in a fresh directory.
 * As root it runs as the `rabbitmq` user (setpriv, same process group, so `kill` reaches beam.smp).
 */
export async function startPrivateRabbit(options: PrivateRabbitOptions = {}): Promise<PrivateRabbit> {
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
