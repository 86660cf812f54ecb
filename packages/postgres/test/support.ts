/** Test helpers: the machine's PostgreSQL (JOBS_POSTGRES_URL) and throwaway schemas. */
import { randomBytes } from "node:crypto";
import pg from "pg";

/** A schema name no other run uses. */
export function uniqueSchema(tag: string): string {
  return `jobs_${tag}_${randomBytes(4).toString("hex")}`;
}

/** Drops the schemas (and everything in them). */
export async function dropSchemas(url: string, schemas: readonly string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  } finally {
    await client.end();
  }
}
