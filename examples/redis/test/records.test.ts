import { checkRecords, runRecordsInTest } from "example-shared";
import { redisTestStore } from "example-shared/store";
import { expect, it } from "vitest";
import { connect } from "../src/broker.js";

it.skipIf(process.env.JOBS_REDIS_URL === undefined)(
  "runs the records example on a Redis broker with a Redis store, and leaves no key behind",
  async () => {
    // The run's prefix goes to the broker too: its keys are removed with the store's.
    const { result } = await runRecordsInTest({ connect, store: redisTestStore });
    expect(checkRecords(result)).toEqual([]);
    expect(result.results[0]).toEqual({ account: "acme", pages: 3, url: "https://reports.example/acme.pdf" });
  },
  60_000,
);
