import { checkRecords, runRecordsInTest } from "example-shared";
import { redisTestStore } from "example-shared/store";
import { expect, it } from "vitest";
import { cleanup, connect } from "../src/broker.js";

const needs = process.env.JOBS_NATS_URL === undefined || process.env.JOBS_REDIS_URL === undefined;

it.skipIf(needs)(
  "runs the records example on NATS with a Redis store (the broker moves jobs, the store remembers them)",
  async () => {
    const { result } = await runRecordsInTest({ connect, store: redisTestStore, cleanup });
    expect(checkRecords(result)).toEqual([]);
  },
  60_000,
);
