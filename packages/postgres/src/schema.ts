/**
 * The schema: versioned migrations, applied at the first connection under an advisory lock (so
 * that workers starting together wait for each other), each in its own transaction with the row
 * that records it. `migrate: false` only checks the version.
 */
import { BrokerConnectionError } from "@jobs/core/adapter";
import type { PoolClient } from "pg";

/** The schema version this library reads and writes. */
export const SCHEMA_VERSION = 1;

/**
 * The migrations in order, as SQL for `schema`: index i brings the schema from version i to i + 1.
 * Times are ms since the epoch by the server's clock (`now_ms()`), so that every process agrees.
 */
function migrations(schema: string): string[] {
  const s = schema;
  return [
    `CREATE FUNCTION ${s}.now_ms() RETURNS bigint LANGUAGE sql VOLATILE
       AS $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;
     -- One row per message. visible_at: when it can be handed out (ready: when published; delayed:
     -- when due; handed out: its lease deadline). token: the current delivery's token (NULL when
     -- not handed out); every settlement names it, so a consumer that lost its lease changes nothing.
     CREATE TABLE ${s}.messages (
       id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       queue text NOT NULL,
       job_id text NOT NULL,
       body text NOT NULL,
       priority smallint NOT NULL,
       visible_at bigint NOT NULL,
       deliveries integer NOT NULL DEFAULT 0,
       token bigint
     );
     CREATE INDEX messages_fetch ON ${s}.messages (queue, priority DESC, visible_at, id);
     CREATE INDEX messages_due ON ${s}.messages (queue, visible_at);
     CREATE UNIQUE INDEX messages_token ON ${s}.messages (token) WHERE token IS NOT NULL;
     CREATE SEQUENCE ${s}.tokens;
     -- Job ids published with dedupe, remembered until expires_at.
     CREATE TABLE ${s}.dedupe (
       queue text NOT NULL,
       job_id text NOT NULL,
       expires_at bigint NOT NULL,
       PRIMARY KEY (queue, job_id)
     );
     CREATE INDEX dedupe_expiry ON ${s}.dedupe (expires_at);
     CREATE TABLE ${s}.dead_letters (
       id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       queue text NOT NULL,
       body text NOT NULL,
       reason text NOT NULL,
       error text NOT NULL,
       failed_at bigint NOT NULL
     );
     CREATE INDEX dead_letters_queue ON ${s}.dead_letters (queue, id);`,
  ];
}

/** The SQL of every migration, for teams that run migrations themselves (`migrate: false`): apply in order, each with its version row. */
export function postgresMigrations(schema = "jobs"): { readonly version: number; readonly sql: string }[] {
  return [
    { version: 0, sql: prelude(schema) },
    ...migrations(schema).map((sql, i) => ({
      version: i + 1,
      sql: `${sql}\nINSERT INTO ${schema}.schema_version (version) VALUES (${i + 1});`,
    })),
  ];
}

function prelude(s: string): string {
  return `CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE IF NOT EXISTS ${s}.schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());`;
}

/** The schema is missing, older or newer than this library: a clear, non-retryable error. */
export class SchemaMismatchError extends BrokerConnectionError {
  readonly found: number;
  readonly expected: number;
  constructor(schema: string, found: number, expected: number, migrate: boolean) {
    const what =
      found > expected
        ? `is at version ${found}, newer than this @jobs/postgres (version ${expected}): upgrade @jobs/postgres`
        : found === 0
          ? `does not exist (version 0, this @jobs/postgres needs ${expected})${migrate ? "" : ": apply postgresMigrations() or set migrate: true"}`
          : `is at version ${found}, older than this @jobs/postgres (version ${expected})${migrate ? "" : ": apply postgresMigrations() or set migrate: true"}`;
    super(`[jobs] [postgres] schema "${schema}" ${what}`, { retryable: false });
    this.name = "SchemaMismatchError";
    this.found = found;
    this.expected = expected;
  }
}

async function versionOf(client: PoolClient, schema: string): Promise<number> {
  const exists = await client.query("SELECT to_regclass($1) IS NOT NULL AS ok", [`${schema}.schema_version`]);
  if (exists.rows[0]?.ok !== true) return 0;
  const r = await client.query(`SELECT coalesce(max(version), 0) AS v FROM ${schema}.schema_version`);
  return Number(r.rows[0]?.v ?? 0);
}

/** Brings the schema to SCHEMA_VERSION (migrate) or checks that it is there; throws SchemaMismatchError otherwise. */
export async function prepareSchema(client: PoolClient, schema: string, migrate: boolean): Promise<void> {
  if (!migrate) {
    const found = await versionOf(client, schema);
    if (found !== SCHEMA_VERSION) throw new SchemaMismatchError(schema, found, SCHEMA_VERSION, false);
    return;
  }
  // A session lock keyed by the schema: concurrent starts migrate one at a time.
  await client.query("SELECT pg_advisory_lock(hashtext($1))", [`jobs-migrate:${schema}`]);
  try {
    let found = await versionOf(client, schema);
    if (found > SCHEMA_VERSION) throw new SchemaMismatchError(schema, found, SCHEMA_VERSION, true);
    if (found === SCHEMA_VERSION) return;
    if (found === 0) await client.query(prelude(schema));
    const all = migrations(schema);
    while (found < SCHEMA_VERSION) {
      await client.query("BEGIN");
      try {
        await client.query(all[found] as string);
        await client.query(`INSERT INTO ${schema}.schema_version (version) VALUES ($1)`, [found + 1]);
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK").catch(() => {});
        throw error;
      }
      found++;
    }
  } finally {
    await client.query("SELECT pg_advisory_unlock(hashtext($1))", [`jobs-migrate:${schema}`]).catch(() => {});
  }
}
