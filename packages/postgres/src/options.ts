/** `PostgresBrokerOptions` and their validation. */
import {
  type BrokerCapabilities,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type Duration,
  InvalidOptionsError,
  type LoggerOption,
  parseDuration,
} from "@jobs/core/adapter";
import type { PoolConfig } from "pg";

/** Options of `createPostgresBroker`. */
export interface PostgresBrokerOptions {
  /** Connection URL, e.g. "postgres://user:pass@host:5432/db"; credentials in it are used and never shown. @default "postgres://127.0.0.1:5432/postgres" */
  readonly url?: string;
  /** Extra node-postgres pool options (ssl, password, …); `url` wins for what it says. @default {} */
  readonly connectionOptions?: PoolConfig;
  /** The schema holding the tables; created by the migrations when missing. @default "jobs" */
  readonly schema?: string;
  /**
   * Apply the schema's migrations at the first connection, under an advisory lock (concurrent
   * starts wait for each other). `false`: the schema must already be at this library's version
   * (`postgresMigrations()` gives the SQL); a missing or older one fails every call with a message
   * that says so. @default true
   */
  readonly migrate?: boolean;
  /** Connections of the pool (the LISTEN connection is one more). @default 10 */
  readonly poolSize?: number;
  /** Largest message body accepted, in UTF-8 bytes. @default 1048576 (1 MiB) */
  readonly maxPayloadBytes?: number;
  /** How long, at least, a published job id is remembered for dedupe (0 turns dedupe off). @default "5m" */
  readonly dedupeWindow?: Duration;
  /** A call made before the first connection waits this long for it, then fails with a definite `BrokerConnectionError` (nothing was sent); each connect attempt is bounded by it too. @default "10s" */
  readonly connectTimeout?: Duration;
  /** Give up on a statement after this long (client side); a publish is then ambiguous. @default "10s" */
  readonly requestTimeout?: Duration;
  /** Longest an idle consumer waits without a notification before looking again (a safety net for a lost NOTIFY). @default "30s" */
  readonly maxIdle?: Duration;
  /** Where this broker's warnings and errors are logged (pino, console, …). `false` logs nothing. @default `console`, once per code, for what no listener hears */
  readonly logger?: LoggerOption;
}

/** The options, checked, with their defaults filled in. */
export interface PostgresSettings {
  readonly options: PostgresBrokerOptions;
  readonly url: string;
  readonly schema: string;
  readonly migrate: boolean;
  readonly poolSize: number;
  readonly dedupeWindowMs: number;
  readonly connectTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxIdleMs: number;
  readonly capabilities: BrokerCapabilities;
}

/** What the PostgreSQL adapter does natively (the defaults; an instance narrows them from its options). */
export const postgresCapabilities: BrokerCapabilities = {
  priority: "native",
  maxDelayMs: Number.POSITIVE_INFINITY,
  maxPayloadBytes: 1_048_576,
  dedupeWindowMs: 300_000,
  leaseExtension: true,
  durable: true,
  redeliverOnClose: false,
  timerResolutionMs: 25,
};

/** A schema name: a plain lower-case identifier, so that it never needs quoting. */
const SCHEMA = /^[a-z_][a-z0-9_]{0,47}$/;
/** The largest body PostgreSQL's text type holds is 1 GB; keep well below. */
const MAX_PAYLOAD_LIMIT = 256 * 1_048_576;

/** Checks `options` (InvalidOptionsError naming the first bad field) and fills in the defaults. */
export function resolvePostgresOptions(options: PostgresBrokerOptions): PostgresSettings {
  if (typeof options !== "object" || options === null) throw new InvalidOptionsError("options", "expected an options object");
  const url = options.url ?? "postgres://127.0.0.1:5432/postgres";
  if (typeof url !== "string" || !/^postgres(ql)?:\/\//.test(url)) {
    throw new InvalidOptionsError("url", 'expected a "postgres://" or "postgresql://" URL');
  }
  const schema = options.schema ?? "jobs";
  if (typeof schema !== "string" || !SCHEMA.test(schema)) {
    throw new InvalidOptionsError(
      "schema",
      "expected a lower-case identifier: a-z, 0-9 and _, not starting with a digit, at most 48 characters",
    );
  }
  const migrate = options.migrate ?? true;
  if (typeof migrate !== "boolean") throw new InvalidOptionsError("migrate", "expected true or false");
  const poolSize = options.poolSize ?? 10;
  if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 1000)
    throw new InvalidOptionsError("poolSize", "expected an integer from 1 to 1000");
  const maxPayloadBytes = options.maxPayloadBytes ?? postgresCapabilities.maxPayloadBytes;
  if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 1 || maxPayloadBytes > MAX_PAYLOAD_LIMIT) {
    throw new InvalidOptionsError("maxPayloadBytes", `expected an integer from 1 to ${MAX_PAYLOAD_LIMIT}`);
  }
  const dedupeWindowMs = parseDuration(options.dedupeWindow ?? postgresCapabilities.dedupeWindowMs, "dedupeWindow");
  const connectTimeoutMs = parseDuration(options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS, "connectTimeout");
  if (connectTimeoutMs < 1) throw new InvalidOptionsError("connectTimeout", "expected a positive duration");
  const requestTimeoutMs = parseDuration(options.requestTimeout ?? "10s", "requestTimeout");
  if (requestTimeoutMs < 1) throw new InvalidOptionsError("requestTimeout", "expected a positive duration");
  const maxIdleMs = parseDuration(options.maxIdle ?? "30s", "maxIdle");
  if (maxIdleMs < 100) throw new InvalidOptionsError("maxIdle", "expected at least 100 ms");
  if (options.connectionOptions !== undefined && (typeof options.connectionOptions !== "object" || options.connectionOptions === null)) {
    throw new InvalidOptionsError("connectionOptions", "expected an object of node-postgres pool options");
  }
  return {
    options,
    url,
    schema,
    migrate,
    poolSize,
    dedupeWindowMs,
    connectTimeoutMs,
    requestTimeoutMs,
    maxIdleMs,
    capabilities: { ...postgresCapabilities, maxPayloadBytes, dedupeWindowMs },
  };
}
