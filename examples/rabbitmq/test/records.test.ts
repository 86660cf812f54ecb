import { checkRecords, runRecords } from "example-shared";
import { openStore, removeStore } from "example-shared/store";
import { expect, it } from "vitest";
import { connect } from "../src/broker.js";

const needs = process.env.JOBS_RABBITMQ_URL === undefined || process.env.JOBS_REDIS_URL === undefined;

it.skipIf(needs)(
  "runs the records example on RabbitMQ with a Redis store (the broker moves jobs, the store remembers them)",
  async () => {
    const prefix = `jobs-example-test-${crypto.randomUUID().slice(0, 8)}`;
    const store = openStore(prefix);
    try {
      const result = await runRecords({ connect, store, log: () => {} });
      expect(checkRecords(result)).toEqual([]);
    } finally {
      await store.close();
      await removeStore(prefix);
    }
  },
  60_000,
);
