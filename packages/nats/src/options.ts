/** `NatsBrokerOptions` and their validation. */
import {
  assertClientShape,
  type BrokerCapabilities,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type Duration,
  InvalidOptionsError,
  type LoggerOption,
  parseDuration,
  renamedOption,
} from "@jobs/core/adapter";
import type { NatsConnection, NodeConnectionOptions } from "@nats-io/transport-node";
import { natsCapabilities, natsInstanceCapabilities } from "./capabilities.js";

/** Options of `createNatsBroker`. */
export interface NatsBrokerOptions {
  /** Server URL (or several, comma-separated); credentials in it are used and never shown. @default "nats://127.0.0.1:4222" */
  readonly url?: string;
  /** Extra `connect()` options of @nats-io/transport-node; they override ours (reconnect forever, ping every `heartbeat`). @default {} */
  readonly connectionOptions?: NodeConnectionOptions;
  /** An open connection to use instead of opening one; `close()` leaves it open. Checked by shape. @default undefined (the broker connects) */
  readonly client?: NatsConnection;
  /** @deprecated Renamed `client` (same meaning); removed in the next major release. */
  readonly connection?: NatsConnection;
  /** Work-queue stream that holds every queue of this broker; created if missing. @default "JOBS" */
  readonly stream?: string;
  /** First token of the stream's subjects: `<prefix>.<queue>.ready|delayed|dead`. @default "jobs" */
  readonly prefix?: string;
  /** @deprecated Renamed `prefix` (same meaning); removed in the next major release. */
  readonly subjectPrefix?: string;
  /** How often the connection pings the server; a dead link is noticed after two unanswered pings. Ignored with `client`. @default "2s" */
  readonly heartbeat?: Duration;
  /** Replicas of the stream when the broker creates it. @default 1 */
  readonly replicas?: number;
  /** Duplicate window of the stream when the broker creates it: dedupe of enqueues by job id. @default "2m" */
  readonly duplicateWindow?: Duration;
  /** Largest body accepted, in UTF-8 bytes; leave room below the server's max_payload for headers. @default 1000000 */
  readonly maxPayloadBytes?: number;
  /** Longest delay declared to core (it re-delays longer ones on receipt); lower it to test that path. @default Infinity */
  readonly maxDelay?: Duration;
  /** A call made before the first connection waits this long for it, then fails with a definite `BrokerConnectionError` (nothing was sent); each connect attempt is bounded by it too. @default "10s" */
  readonly connectTimeout?: Duration;
  /** Bound on every JetStream request and PubAck; a publish past it has an unknown outcome. @default "10s" */
  readonly requestTimeout?: Duration;
  /** Where this broker's warnings and errors are logged (pino, console, …). `false` logs nothing. @default `console`, once per code, for what no listener hears */
  readonly logger?: LoggerOption;
}

/** The options, checked, with their defaults filled in. */
export interface NatsSettings {
  readonly options: NatsBrokerOptions;
  /** The caller's connection (`client`, or its deprecated name `connection`), if given. */
  readonly client: NatsConnection | undefined;
  /** The ping interval of a connection the broker opens (`heartbeat`). */
  readonly heartbeatMs: number;
  readonly stream: string;
  readonly prefix: string;
  readonly replicas: number;
  readonly dedupeWindowMs: number;
  /** The longest single hold of a delayed message (a day at most). */
  readonly holdMs: number;
  readonly connectTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly capabilities: BrokerCapabilities;
}

/** One subject token: letters, digits, `_` and `-` (no `.`, `*`, `>` or spaces). Also what a queue name must be. */
export const TOKEN: RegExp = /^[A-Za-z0-9_-]{1,128}$/;
const STREAM_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const DAY_MS = 86_400_000;

/** Checks `options` (InvalidOptionsError naming the first bad field) and fills in the defaults. */
export function resolveNatsOptions(options: NatsBrokerOptions): NatsSettings {
  if (typeof options !== "object" || options === null) throw new InvalidOptionsError("options", "expected an options object");
  const stream = options.stream ?? "JOBS";
  if (!STREAM_NAME.test(stream)) throw new InvalidOptionsError("stream", "expected 1-64 letters, digits, _ or -");
  const prefix = renamedOption<string>("nats", options, "subjectPrefix", "prefix") ?? "jobs";
  if (typeof prefix !== "string" || !TOKEN.test(prefix)) {
    const field = options.subjectPrefix === undefined ? "prefix" : "subjectPrefix";
    throw new InvalidOptionsError(field, "expected one subject token: letters, digits, _ or -");
  }
  const client = renamedOption<NatsConnection>("nats", options, "connection", "client");
  if (client !== undefined) {
    const field = options.client === undefined ? "connection" : "client";
    assertClientShape(field, client, ["publish", "subscribe", "flush", "close", "isClosed", "status"], "an open NATS connection");
  }
  const heartbeatMs = parseDuration(options.heartbeat ?? "2s", "heartbeat");
  if (heartbeatMs < 100) throw new InvalidOptionsError("heartbeat", "expected at least 100 ms");
  const replicas = options.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) throw new InvalidOptionsError("replicas", "expected 1 to 5");
  const maxPayloadBytes = options.maxPayloadBytes ?? natsCapabilities.maxPayloadBytes;
  if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 1)
    throw new InvalidOptionsError("maxPayloadBytes", "expected a positive integer");
  const dedupeWindowMs = parseDuration(options.duplicateWindow ?? "2m", "duplicateWindow");
  if (dedupeWindowMs < 100) throw new InvalidOptionsError("duplicateWindow", "expected at least 100 ms");
  const maxDelayMs = options.maxDelay === undefined ? Number.POSITIVE_INFINITY : parseDuration(options.maxDelay, "maxDelay");
  if (maxDelayMs < 1_000) throw new InvalidOptionsError("maxDelay", "expected at least 1 s");
  const requestTimeoutMs = parseDuration(options.requestTimeout ?? "10s", "requestTimeout");
  if (requestTimeoutMs < 1) throw new InvalidOptionsError("requestTimeout", "expected a positive duration");
  const connectTimeoutMs = parseDuration(options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS, "connectTimeout");
  if (connectTimeoutMs < 1) throw new InvalidOptionsError("connectTimeout", "expected a positive duration");
  return {
    options,
    client,
    heartbeatMs,
    stream,
    prefix,
    replicas,
    dedupeWindowMs,
    holdMs: Math.min(maxDelayMs, DAY_MS),
    connectTimeoutMs,
    requestTimeoutMs,
    capabilities: natsInstanceCapabilities(maxPayloadBytes, dedupeWindowMs, maxDelayMs),
  };
}
