// The only file that differs between examples: how to reach the broker.
// Every call opens a new pool to the PostgreSQL database at JOBS_POSTGRES_URL.
import type { Broker } from "@jobs/core";
import { createPostgresBroker } from "@jobs/postgres";
import pg from "pg";

const url = process.env.JOBS_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/**
 * This run's own schema (an application would keep the default "jobs"): the first broker creates
 * its tables, and `cleanup()` drops it, so a run leaves nothing behind in a shared database.
 */
export const schema = `jobs_example_${process.pid}`;

/** A new broker on the database; the first one to connect applies the schema's migrations. */
export function connect(): Broker {
  return createPostgresBroker({ url, schema });
}

/** Drops this run's schema and its tables (nothing to do if it does not exist). */
export async function cleanup(): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}
