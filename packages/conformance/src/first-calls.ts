/**
 * A broker that cannot be reached or refuses the login, as a user meets it: the first enqueue,
 * worker start and admin call. Each adapter's wrong-URL tests build the broker (closed port,
 * unresolvable host, wrong credentials); these two helpers make the calls and check the outcome,
 * so every adapter asserts the same thing.
 */
import { inspect } from "node:util";
import { type Broker, BrokerConnectionError, createAdmin, createClient, createWorker, defineJob, JobsError } from "@jobs/core";
import { expect } from "vitest";

/** How one first call ended. */
export interface FirstCallOutcome {
  readonly call: "enqueue" | "start" | "counts";
  /** What it rejected with; `undefined` when it resolved. */
  readonly error: unknown;
  readonly ms: number;
  /** The `disconnected` events the broker emitted until the call settled (the error of each). */
  readonly disconnected: readonly unknown[];
}

const job = defineJob<{ n: number }>({ name: "wrong-url", queue: "wrongurl" });

/** The first `client.enqueue`, `worker.start()` and `admin.counts`, each on a broker of its own (from `open`), run together; each broker is closed after. */
export function firstCalls(open: () => Broker): Promise<FirstCallOutcome[]> {
  const calls: Record<FirstCallOutcome["call"], (broker: Broker) => Promise<unknown>> = {
    enqueue: (broker) => createClient({ broker }).enqueue(job, { n: 1 }),
    start: (broker) =>
      createWorker({ broker })
        .handle(job, () => {})
        .start(),
    counts: (broker) => createAdmin({ broker }).counts(job.queue),
  };
  return Promise.all(
    (Object.keys(calls) as FirstCallOutcome["call"][]).map(async (call) => {
      const broker = open();
      const disconnected: unknown[] = [];
      broker.on("disconnected", ({ error }) => disconnected.push(error));
      const started = performance.now();
      const error = await calls[call](broker).then(
        () => undefined,
        (e: unknown) => e,
      );
      const ms = performance.now() - started;
      await broker.close();
      return { call, error, ms, disconnected: [...disconnected] };
    }),
  );
}

/** What `expectDefiniteConnectionError` checks. */
export interface DefiniteConnectionErrorExpectation {
  /** `false` for a refused login, `true` for a broker that may yet come up. */
  readonly retryable: boolean;
  /** Text the message must contain (the host, what was refused). */
  readonly mentions: string;
  /** A credential that must appear nowhere: message, cause, `inspect()`. */
  readonly secret: string;
  /** The broker's `connectTimeout`: each call settles within it, plus a generous margin for a busy machine. */
  readonly connectTimeoutMs: number;
}

/**
 * Every first call rejected with a `BrokerConnectionError` (never "may or may not be stored"), as
 * expected, without the secret, within the connect timeout; a broker that could not be reached
 * (`retryable`) said so first with one `disconnected` event, as it does for a lost connection.
 */
export function expectDefiniteConnectionError(results: readonly FirstCallOutcome[], expected: DefiniteConnectionErrorExpectation): void {
  expect(results.map((r) => r.call)).toEqual(["enqueue", "start", "counts"]);
  for (const { call, error, ms, disconnected } of results) {
    expect(error, call).toBeInstanceOf(BrokerConnectionError);
    const e = error as JobsError;
    expect(JobsError.isInstance(e)).toBe(true);
    expect(e.code, call).toBe("broker-connection");
    expect(e.retryable, call).toBe(expected.retryable);
    expect(e.message, call).toContain(expected.mentions);
    for (const text of [e.message, String(e.cause), inspect(e, { depth: 10 })]) expect(text, call).not.toContain(expected.secret);
    expect(ms, call).toBeLessThan(expected.connectTimeoutMs + 5_000);
    if (expected.retryable) {
      expect(disconnected, `${call}: disconnected events`).toHaveLength(1);
      expect(inspect(disconnected, { depth: 10 }), call).not.toContain(expected.secret);
    }
  }
}
