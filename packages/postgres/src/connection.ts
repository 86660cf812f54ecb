/**
 * The pool every statement runs on, the dedicated LISTEN connection that wakes idle consumers,
 * and the first connection (which applies or checks the schema). The LISTEN connection is also
 * how the broker notices PostgreSQL going away while idle: it is pinged, and reconnected forever
 * with backoff; consumers look again once it is back (a NOTIFY sent meanwhile was lost).
 */
import {
  type BrokerEventMap,
  brokerClosedError,
  type Emitter,
  FirstConnection,
  isLoopbackHost,
  reconnectDelay,
  redactedCause,
  serializeError,
  warnInsecureConnection,
} from "@jobs/core/adapter";
import pg from "pg";
import type { PostgresSettings } from "./options.js";
import { prepareSchema, SchemaMismatchError } from "./schema.js";

/** A node-postgres error from the server (the statement failed and was rolled back), as opposed to a lost connection. */
export function isServerError(error: unknown): boolean {
  return error instanceof pg.DatabaseError;
}

export class PostgresConnection {
  readonly pool: pg.Pool;
  readonly first: FirstConnection;
  /** The NOTIFY channel of this schema. */
  readonly channel: string;
  readonly host: string;
  readonly #settings: PostgresSettings;
  readonly #events: Emitter<BrokerEventMap>;
  readonly #config: pg.PoolConfig;
  readonly #onNotify: (queue: string) => void;
  readonly #onReconnected: () => void;
  #listener: pg.Client | undefined;
  #ping: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #attempt = 0;
  #down = false;
  #closed = false;

  constructor(settings: PostgresSettings, events: Emitter<BrokerEventMap>, hooks: { notified(queue: string): void; reconnected(): void }) {
    this.#settings = settings;
    this.#events = events;
    this.#onNotify = hooks.notified;
    this.#onReconnected = hooks.reconnected;
    this.channel = `${settings.schema}_jobs`;
    const url = new URL(settings.url);
    this.host = `${url.hostname || "localhost"}:${url.port || "5432"}`;
    this.#config = {
      application_name: "jobs",
      ...settings.options.connectionOptions,
      connectionString: settings.url,
      max: settings.poolSize,
      connectionTimeoutMillis: settings.connectTimeoutMs,
      query_timeout: settings.requestTimeoutMs,
      keepAlive: true,
    };
    this.pool = new pg.Pool(this.#config);
    // An idle pooled connection that dies (server restart) is dropped by the pool; the next statement opens another.
    this.pool.on("error", (error) => this.#events.emit("error", { error: serializeError(redactedCause(error)) }));
    // A connection that dies while checked out between two statements would otherwise throw its
    // error from an event nobody listens to; its statement fails on its own, so nothing is lost.
    this.pool.on("connect", (client) => {
      client.on("error", () => {});
    });
    this.first = new FirstConnection("postgres", this.host, settings.connectTimeoutMs, events);
    const ssl = settings.options.connectionOptions?.ssl ?? /[?&]ssl(mode)?=(?!disable|false|0)/.test(settings.url);
    const password = url.password !== "" || settings.options.connectionOptions?.password !== undefined;
    if (!isLoopbackHost(url.hostname) && !ssl && password) {
      warnInsecureConnection(
        events,
        "postgres",
        `credentials go to ${this.host} in plain text (no TLS): add sslmode=require (or verify-full) to the URL, or the ssl connection option`,
      );
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Connects in the background until the first connection (schema ready, LISTEN on) is made. */
  start(): void {
    void this.#connect();
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    try {
      if (!this.first.connected) {
        const client = await this.pool.connect();
        try {
          await prepareSchema(client, this.#settings.schema, this.#settings.migrate);
        } finally {
          client.release();
        }
      }
      await this.#listen();
      this.#attempt = 0;
      if (!this.first.connected) {
        this.first.connectedNow();
      } else if (this.#down) {
        this.#down = false;
        this.#events.emit("reconnected", {});
      }
      this.#onReconnected();
    } catch (error) {
      if (this.#closed) return;
      if (error instanceof SchemaMismatchError) {
        // Not something a retry fixes: every call fails with it.
        this.first.abort(error);
        return;
      }
      if (this.first.connected) {
        if (!this.#down) {
          this.#down = true;
          this.#events.emit("disconnected", { error: serializeError(redactedCause(error)) });
        }
      } else {
        this.first.failed(error);
      }
      this.#retry = setTimeout(() => void this.#connect(), reconnectDelay(this.#attempt++, { initialMs: 100, maxMs: 2_000 }));
    }
  }

  async #listen(): Promise<void> {
    const client = new pg.Client(this.#config);
    const lost = (error: unknown): void => {
      if (this.#listener !== client) return;
      this.#listener = undefined;
      clearInterval(this.#ping);
      client.removeAllListeners("notification");
      void client.end().catch(() => {});
      if (this.#closed) return;
      this.#down = true;
      this.#events.emit("disconnected", { error: serializeError(redactedCause(error ?? new Error("connection ended"))) });
      this.#retry = setTimeout(() => void this.#connect(), reconnectDelay(this.#attempt++, { initialMs: 100, maxMs: 2_000 }));
    };
    client.on("error", lost);
    client.on("end", () => lost(new Error("the LISTEN connection ended")));
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
    } catch (error) {
      client.removeAllListeners("error");
      client.removeAllListeners("end");
      client.on("error", () => {});
      void client.end().catch(() => {});
      throw error;
    }
    if (this.#closed) {
      void client.end().catch(() => {});
      return;
    }
    client.on("notification", (message) => {
      if (message.channel === this.channel && message.payload !== undefined) this.#onNotify(message.payload);
    });
    this.#listener = client;
    // A silent link (a paused or half-open server) shows up as a ping that does not come back.
    this.#ping = setInterval(() => {
      client.query("SELECT 1").catch((error: unknown) => {
        lost(error);
        client.emit("end");
      });
    }, 5_000);
    this.#ping.unref();
  }

  /** Runs one statement on a pooled connection. `sent` tells a failure before the statement left (definite) from one after. */
  async query<R extends pg.QueryResultRow>(text: string, values: unknown[], name?: string): Promise<pg.QueryResult<R>> {
    if (this.#closed) throw brokerClosedError("postgres");
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw new NotSentError(error);
    }
    try {
      const result = await client.query<R>(name === undefined ? { text, values } : { name, text, values });
      client.release();
      return result;
    } catch (error) {
      // A server error leaves the connection usable; anything else (timeout, reset) does not.
      client.release(isServerError(error) ? undefined : true);
      throw error;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retry);
    clearInterval(this.#ping);
    this.first.abort(brokerClosedError("postgres"));
    const listener = this.#listener;
    this.#listener = undefined;
    await Promise.allSettled([listener?.end(), this.pool.end()]);
  }
}

/** A statement that never left the process: no connection could be had. */
export class NotSentError extends Error {
  constructor(cause: unknown) {
    super("no connection", { cause });
  }
}
