import { runScenario } from "example-shared";
import pg from "pg";
import { expect, it } from "vitest";
import { cleanup, connect, schema } from "../src/broker.js";

const url = process.env.JOBS_POSTGRES_URL;

it.skipIf(url === undefined)(
  "runs the example scenario on PostgreSQL and leaves no schema behind",
  async () => {
    const lines: string[] = [];
    try {
      const result = await runScenario({ connect, log: (line) => lines.push(line) });
      expect(result).toEqual({ succeeded: 8, deadLettered: 1, retried: 2, firstImage: "critical" });
    } finally {
      await cleanup();
    }
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const left = await client.query("SELECT 1 FROM information_schema.schemata WHERE schema_name = $1", [schema]);
      expect(left.rowCount).toBe(0);
    } finally {
      await client.end();
    }
  },
  60_000,
);
