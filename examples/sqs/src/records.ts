// Job records on sqs with a Redis store: the records example of example-shared
// (pnpm --filter example-sqs records; --smoke checks the outcome and exits non-zero if it is off).
import { recordsMain } from "example-shared";
import { openStore } from "example-shared/store";
import { connect } from "./broker.js";

const store = openStore();
try {
  await recordsMain({ connect, store, smoke: process.argv.includes("--smoke") });
} finally {
  await store.close();
}
