import { checkRecords, runRecordsInTest } from "example-shared";
import { redisTestStore } from "example-shared/store";
import { expect, it } from "vitest";
import { connect } from "../src/broker.js";

// SQS runs on the in-process emulator unless JOBS_SQS_ENDPOINT is set; the store needs Redis.
it.skipIf(process.env.JOBS_REDIS_URL === undefined)(
  "runs the records example on SQS with a Redis store (the broker moves jobs, the store remembers them)",
  async () => {
    const { result } = await runRecordsInTest({ connect, store: redisTestStore });
    expect(checkRecords(result)).toEqual([]);
  },
  60_000,
);
