import { checkRecords, runRecords } from "example-shared";
import { openStore, removeStore } from "example-shared/store";
import { expect, it } from "vitest";
import { connect } from "../src/broker.js";

const url = process.env.JOBS_REDIS_URL;

it.skipIf(url === undefined)(
  "runs the records example on a Redis broker with a Redis store, and leaves no key behind",
  async () => {
    // One prefix for this run's broker and store keys, all deleted after.
    const prefix = `jobs-example-test-${crypto.randomUUID().slice(0, 8)}`;
    const store = openStore(prefix);
    try {
      const result = await runRecords({ connect: () => connect(prefix), store, log: () => {} });
      expect(checkRecords(result)).toEqual([]);
      expect(result.results[0]).toEqual({ account: "acme", pages: 3, url: "https://reports.example/acme.pdf" });
    } finally {
      await store.close();
      await removeStore(prefix);
    }
  },
  60_000,
);
