/** `@jobs/postgres`: the PostgreSQL adapter (node-postgres). */
import { PostgresAdapter, type PostgresBroker } from "./broker.js";
import type { PostgresBrokerOptions } from "./options.js";

export type { PostgresBroker } from "./broker.js";
export type { PostgresBrokerOptions } from "./options.js";
export { postgresCapabilities } from "./options.js";
export { postgresMigrations, SCHEMA_VERSION, SchemaMismatchError } from "./schema.js";

/** Creates a broker on PostgreSQL: one table of messages per schema, fetched with FOR UPDATE SKIP LOCKED, woken by LISTEN/NOTIFY. */
export function createPostgresBroker(options: PostgresBrokerOptions = {}): PostgresBroker {
  return new PostgresAdapter(options);
}
