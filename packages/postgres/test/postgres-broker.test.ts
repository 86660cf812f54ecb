// The PostgreSQL adapter's own cases: options, the schema's migrations and version checks, and
// connection failures (a wrong password on a private server with password auth, a missing
// database), each with a typed error that never shows the password.
import { brokerUrlFromEnv, type PrivatePostgres, startPrivatePostgres } from "@jobs/conformance";
import { BrokerConnectionError, InvalidOptionsError, type JobsError } from "@jobs/core";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresBroker, postgresMigrations, SCHEMA_VERSION, SchemaMismatchError } from "../src/index.js";
import { dropSchemas, uniqueSchema } from "./support.js";

const url = brokerUrlFromEnv("JOBS_POSTGRES_URL");

describe("options", () => {
  it("rejects a URL that is not postgres:// and a schema that would need quoting, at construction", () => {
    expect(() => createPostgresBroker({ url: "mysql://127.0.0.1/x" })).toThrow(InvalidOptionsError);
    expect(() => createPostgresBroker({ url: "postgres://127.0.0.1/x", schema: 'a"; DROP TABLE x; --' })).toThrow(/schema/);
    expect(() => createPostgresBroker({ url: "postgres://127.0.0.1/x", poolSize: 0 })).toThrow(/poolSize/);
  });

  it("warns when credentials would cross plain text to a host off loopback", async () => {
    const broker = createPostgresBroker({
      url: "postgres://u:secret-pw@db.example.invalid:5432/app",
      connectTimeout: "200ms",
      logger: false,
    });
    const warning = await new Promise<{ message: string }>((resolve) => broker.on("insecure-connection", resolve));
    expect(warning.message).toMatch(/plain text/);
    expect(warning.message).not.toContain("secret-pw");
    await broker.close();
  });
});

async function sql(connectionString: string, text: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

describe.skipIf(url === undefined)("schema", () => {
  const db = url as string;
  const schemas: string[] = [];
  const fresh = (tag: string): string => {
    const s = uniqueSchema(tag);
    schemas.push(s);
    return s;
  };
  afterAll(() => dropSchemas(db, schemas));

  it("migrates a new schema once when several brokers start together, and records the version", async () => {
    const schema = fresh("mig");
    const brokers = Array.from({ length: 4 }, () => createPostgresBroker({ url: db, schema }));
    try {
      const counts = await Promise.all(brokers.map((b) => b.counts("q")));
      expect(counts).toEqual(brokers.map(() => ({ waiting: 0, delayed: 0, active: 0, dead: 0 })));
      const versions = await sql(db, `SELECT version FROM ${schema}.schema_version ORDER BY version`);
      expect(versions.rows.map((r) => r.version)).toEqual([SCHEMA_VERSION]);
    } finally {
      await Promise.all(brokers.map((b) => b.close()));
    }
  });

  it("with migrate: false, fails every call on a missing schema with SchemaMismatchError that names the fix; works once the SQL is applied", async () => {
    const schema = fresh("nomig");
    const broker = createPostgresBroker({ url: db, schema, migrate: false });
    try {
      const error = await broker.counts("q").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SchemaMismatchError);
      expect((error as JobsError).retryable).toBe(false);
      expect((error as Error).message).toMatch(/does not exist.*postgresMigrations\(\)/);
      const [outcome] = await broker.publish("q", [{ id: "a", body: "{}", priority: 2, delayMs: 0, dedupe: true }]);
      expect(outcome).toMatchObject({ ok: false });
    } finally {
      await broker.close();
    }
    for (const m of postgresMigrations(schema)) await sql(db, m.sql);
    const again = createPostgresBroker({ url: db, schema, migrate: false });
    try {
      expect(await again.publish("q", [{ id: "a", body: "{}", priority: 2, delayMs: 0, dedupe: true }])).toEqual([
        { ok: true, duplicate: false },
      ]);
      expect((await again.counts("q")).waiting).toBe(1);
    } finally {
      await again.close();
    }
  });

  it("refuses a schema newer than the library, and migrates nothing", async () => {
    const schema = fresh("newer");
    const first = createPostgresBroker({ url: db, schema });
    await first.counts("q");
    await first.close();
    await sql(db, `INSERT INTO ${schema}.schema_version (version) VALUES (${SCHEMA_VERSION + 1})`);
    const broker = createPostgresBroker({ url: db, schema });
    try {
      const error = await broker.counts("q").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SchemaMismatchError);
      expect((error as Error).message).toMatch(new RegExp(`version ${SCHEMA_VERSION + 1}, newer than`));
    } finally {
      await broker.close();
    }
  });

  it("names a missing database in the error of a call made before the first connection", async () => {
    const missing = new URL(db);
    missing.pathname = "/jobs_no_such_database";
    const broker = createPostgresBroker({ url: missing.toString(), connectTimeout: "1s", logger: false });
    try {
      const error = await broker.counts("q").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BrokerConnectionError);
      expect((error as Error).message).toMatch(/database "jobs_no_such_database" does not exist/);
    } finally {
      await broker.close();
    }
  });
});

describe.skipIf(url === undefined)("credentials (private server with password auth)", () => {
  let server: PrivatePostgres;
  beforeAll(async () => {
    server = await startPrivatePostgres();
  }, 60_000);
  afterAll(() => server?.stop());

  it("connects with the password, and fails at once with a non-retryable BrokerConnectionError that never shows it on a wrong one", async () => {
    const good = createPostgresBroker({ url: server.url });
    expect(await good.counts("q")).toEqual({ waiting: 0, delayed: 0, active: 0, dead: 0 });
    await good.close();
    const wrongPassword = "wrong-pw-7f3a";
    const bad = createPostgresBroker({ url: server.url.replace(server.password, wrongPassword), connectTimeout: "10s", logger: false });
    try {
      const error = await bad.counts("q").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BrokerConnectionError);
      expect((error as JobsError).retryable).toBe(false);
      expect((error as Error).message).toMatch(/refused the credentials/);
      const everything = JSON.stringify(error, Object.getOwnPropertyNames(error)) + String((error as Error).cause) + (error as Error).stack;
      expect(everything).not.toContain(wrongPassword);
      expect(everything).not.toContain(server.password);
    } finally {
      await bad.close();
    }
  });
});
