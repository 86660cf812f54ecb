/**
 * The adapters under test and how to reach them. A `BrokerSpec` is plain data, so a test can hand
 * it to a forked worker or producer process, which builds its own broker from it with the same
 * test timings (RELIABILITY.md d.1).
 */

import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { type PrivateServer, startPrivateNats, startPrivateRabbitMQ, startPrivateRedis, startPrivateServer } from "@jobs/conformance";
import type { Broker } from "@jobs/core";
import { createMemoryBroker, createMemoryServer, type MemoryServer } from "@jobs/memory";
import { createNatsBroker } from "@jobs/nats";
import { createRabbitmqBroker } from "@jobs/rabbitmq";
import { createRedisBroker, createRedisStore, type RedisStore } from "@jobs/redis";
import { createSqsBroker } from "@jobs/sqs";
import { TIMINGS } from "./config.js";

/** Every adapter the suite runs on. */
export const ADAPTERS = ["memory", "redis", "rabbitmq", "sqs", "nats"] as const;
export type AdapterName = (typeof ADAPTERS)[number];

/** The adapters of this run: all, or the comma-separated list in `JOBS_RELIABILITY_ADAPTERS` (`--adapter`). */
export function selectedAdapters(): readonly AdapterName[] {
  const wanted = process.env.JOBS_RELIABILITY_ADAPTERS;
  if (wanted === undefined || wanted === "") return ADAPTERS;
  const names = wanted.split(",").map((s) => s.trim());
  for (const n of names)
    if (!(ADAPTERS as readonly string[]).includes(n))
      throw new Error(`[reliability] unknown adapter ${JSON.stringify(n)}; one of ${ADAPTERS.join(", ")}`);
  return names as AdapterName[];
}

/** Where a broker is and which names it uses: plain data, safe to send to a child process. */
export interface BrokerSpec {
  readonly adapter: AdapterName;
  /** Broker URL (redis://, amqp://, nats://, http:// for SQS); "" for memory. */
  readonly url: string;
  /** Prefix of every key, queue, stream or subject this run uses, unique per run. */
  readonly namespace: string;
}

/**
 * Where a job store is (issue 15): plain data like `BrokerSpec`, for worker and producer processes.
 * The Redis store at `url` with its keys under `prefix`, unique per run.
 */
export interface StoreSpec {
  readonly kind: "redis";
  readonly url: string;
  readonly prefix: string;
}

/** A new Redis store for the spec, with the suite's timings (those of the Redis broker). */
export function createStore(spec: StoreSpec): RedisStore {
  const { pingIntervalMs, pingTimeoutMs, maxReconnectDelayMs, enqueueTimeoutMs } = TIMINGS;
  return createRedisStore({
    url: spec.url,
    prefix: spec.prefix,
    heartbeat: pingIntervalMs,
    heartbeatTimeout: pingTimeoutMs,
    maxReconnectDelay: maxReconnectDelayMs,
    requestTimeout: enqueueTimeoutMs,
  });
}

/** A store the suite owns: its spec, its private Redis (undefined when it shares the broker's), and `stop`. */
export interface StoreTarget {
  readonly spec: StoreSpec;
  /** The store's own private Redis (AOF always); undefined when the store uses the broker's Redis. */
  readonly server: PrivateServer | undefined;
  /** Stops its own Redis (if any); keys on a shared Redis go with the broker's server. */
  stop(): Promise<void>;
}

/**
 * Starts a private Redis for a store, with AOF `always` and no eviction, so it loses no acknowledged
 * write; `aof: false` keeps nothing on disk (a kill -9 loses every record: the negative control).
 */
export async function startStoreRedis(options: { readonly aof?: boolean } = {}): Promise<PrivateServer> {
  const aof = options.aof ?? true;
  return startPrivateRedis([
    "--appendonly",
    aof ? "yes" : "no",
    ...(aof ? ["--appendfsync", "always"] : []),
    "--maxmemory-policy",
    "noeviction",
  ]);
}

/**
 * The store of a run on `broker`: the Redis broker's own private Redis when `shared` allows it
 * (same server, own prefix), else a private Redis of its own (RabbitMQ, SQS, NATS; or a store
 * restart that must not take the broker down).
 */
export async function startStoreTarget(
  broker: Target,
  options: { readonly shared?: boolean; readonly aof?: boolean } = {},
): Promise<StoreTarget> {
  const prefix = `${broker.spec.namespace}st`;
  if ((options.shared ?? true) && options.aof !== false && broker.spec.adapter === "redis" && broker.persistent)
    return { spec: { kind: "redis", url: broker.spec.url, prefix }, server: undefined, stop: async () => {} };
  const server = await startStoreRedis(options.aof === undefined ? {} : { aof: options.aof });
  return { spec: { kind: "redis", url: `redis://127.0.0.1:${server.port}`, prefix }, server, stop: () => server.stop() };
}

/** Fake SQS credentials: the emulator checks none, and tests look for them in output. */
export const SQS_CREDENTIALS = { accessKeyId: "AKIAJOBSRELIABILITY1", secretAccessKey: "jobs-reliability-secret-Hx4mQ9" } as const;

const memoryServers = new Map<string, MemoryServer>();

/** A new broker for the spec, with the suite's timings; `overrides` are adapter options. */
export function createBroker(spec: BrokerSpec, overrides: Readonly<Record<string, unknown>> = {}): Broker {
  const { leaseMs: _lease, pingIntervalMs, pingTimeoutMs, maxReconnectDelayMs, enqueueTimeoutMs } = TIMINGS;
  switch (spec.adapter) {
    case "memory": {
      // One memory "server" per namespace in this process: memory never crosses processes.
      let server = memoryServers.get(spec.namespace);
      if (server === undefined) {
        server = createMemoryServer();
        memoryServers.set(spec.namespace, server);
      }
      return createMemoryBroker({ server, ...overrides });
    }
    case "redis":
      return createRedisBroker({
        url: spec.url,
        prefix: spec.namespace,
        heartbeat: pingIntervalMs,
        heartbeatTimeout: pingTimeoutMs,
        maxReconnectDelay: maxReconnectDelayMs,
        requestTimeout: enqueueTimeoutMs,
        ...overrides,
      });
    case "rabbitmq":
      return createRabbitmqBroker({
        url: spec.url,
        prefix: `${spec.namespace}.`,
        heartbeat: "1s",
        maxReconnectDelay: maxReconnectDelayMs,
        requestTimeout: enqueueTimeoutMs,
        ...overrides,
      });
    case "sqs":
      return createSqsBroker({
        url: spec.url,
        region: "us-east-1",
        clientConfig: { credentials: SQS_CREDENTIALS },
        prefix: `${spec.namespace}-`,
        waitTimeSeconds: 1,
        requestTimeout: pingTimeoutMs + 1_000,
        countsIncludeInFlight: true,
        ...overrides,
      });
    case "nats":
      return createNatsBroker({
        url: spec.url,
        stream: spec.namespace.toUpperCase().replace(/[^A-Z0-9_]/g, "_"),
        prefix: spec.namespace.replace(/[^A-Za-z0-9_-]/g, "_"),
        requestTimeout: enqueueTimeoutMs,
        ...overrides,
      });
  }
}

/** A broker instance the suite owns: a private server (or, for memory, nothing), its spec, and controls. */
export interface Target {
  readonly spec: BrokerSpec;
  /** The private server process; undefined for memory. SQS's is an in-memory emulator (a restart loses everything). */
  readonly server: PrivateServer | undefined;
  /** Whether a restart keeps accepted messages (Redis with AOF, RabbitMQ, NATS). */
  readonly persistent: boolean;
  /** Kill the server for good and remove its directory. */
  stop(): Promise<void>;
}

/** Options of `startTarget`. */
export interface TargetOptions {
  /** Redis: append-only file with fsync always (default true). False is the R11-C1 negative control. */
  readonly redisAof?: boolean;
  /** RabbitMQ: the node's `consumer_timeout` in ms. */
  readonly rabbitConsumerTimeoutMs?: number;
}

/** A unique namespace for one run, short and valid on every broker. */
export function uniqueNamespace(tag: string): string {
  return `rel${tag.replace(/[^a-z0-9]/gi, "").slice(0, 12)}${randomBytes(3).toString("hex")}`;
}

/** Starts a private instance of the adapter's broker (never the machine's own) and returns its spec. */
export async function startTarget(adapter: AdapterName, tag: string, options: TargetOptions = {}): Promise<Target> {
  const namespace = uniqueNamespace(tag);
  const wrap = (server: PrivateServer | undefined, url: string, persistent: boolean): Target => ({
    spec: { adapter, url, namespace },
    server,
    persistent,
    stop: async () => {
      await server?.stop();
      memoryServers.delete(namespace);
    },
  });
  switch (adapter) {
    case "memory":
      return wrap(undefined, "", false);
    case "redis": {
      const aof = options.redisAof ?? true;
      const server = await startPrivateRedis([
        "--appendonly",
        aof ? "yes" : "no",
        ...(aof ? ["--appendfsync", "always"] : []),
        "--maxmemory-policy",
        "noeviction",
      ]);
      return wrap(server, `redis://127.0.0.1:${server.port}`, aof);
    }
    case "rabbitmq": {
      const node = await startPrivateRabbitMQ(
        options.rabbitConsumerTimeoutMs === undefined ? {} : { consumerTimeoutMs: options.rabbitConsumerTimeoutMs },
      );
      return wrap(node, node.url, true);
    }
    case "nats": {
      const server = await startPrivateNats();
      return wrap(server, `nats://127.0.0.1:${server.port}`, true);
    }
    case "sqs": {
      const entry = pathToFileURL(createRequire(import.meta.url).resolve("local-aws-sqs")).href;
      const server = await startPrivateServer({
        command: process.execPath,
        args: ({ port }) => [
          "-e",
          `import(${JSON.stringify(entry)}).then((m) => m.createSqsServer({ port: ${port}, hostname: "127.0.0.1" }))`,
        ],
      });
      return wrap(server, `http://127.0.0.1:${server.port}`, false);
    }
  }
}
