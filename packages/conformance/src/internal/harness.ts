/**
 * What every case shares: the broker's capabilities (probed once per options object), time limits
 * scaled by `timeScale` and the broker's timer resolution, and the helpers cases assert with
 * (inboxes of deliveries, counts, errors). The per-case fixture is in `fixture.ts`.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { type Broker, InvalidOptionsError, JobsError, type JobsErrorCode, type QueueCounts } from "@jobs/core";
import {
  type BrokerCapabilities,
  type ConsumeOptions,
  type Delivery,
  type OutgoingMessage,
  type PriorityLevel,
  physicalQueue,
  type Subscription,
} from "@jobs/core/adapter";
import { waitFor } from "@jobs/core/testing";
import { expect } from "vitest";
import type { ConformanceOptions } from "../options.js";
import { capabilityProbe } from "./probe.js";

/** Time limits of one suite run, in ms. */
export interface Timing {
  /** The broker's timer resolution. */
  readonly resolution: number;
  /** `base` ms scaled by `timeScale`, rounded up to a whole number of timer resolutions. */
  ms(base: number): number;
  /** A short lease: long enough for a consumer to settle, short enough for a fast suite. */
  readonly lease: number;
  /** A lease no case outlives, for consumers whose leases must not matter. */
  readonly longLease: number;
  /** A short delay the broker holds natively (never above `maxDelayMs`). */
  readonly delay: number;
  /** How early a broker timer may fire: its resolution plus clock truncation. */
  readonly slack: number;
  /** How long to wait for something that must happen. */
  readonly wait: number;
  /** A window in which something must not happen. */
  readonly quiet: number;
  /** vitest timeout of one case. */
  readonly testTimeout: number;
}

/** Builds the suite's time limits from the options and the broker's capabilities. */
export function timingOf(options: ConformanceOptions, caps: BrokerCapabilities): Timing {
  const scale = options.timeScale ?? 1;
  const resolution = Math.max(1, caps.timerResolutionMs);
  const ms = (base: number): number => Math.max(resolution, Math.ceil((base * scale) / resolution) * resolution);
  return {
    resolution,
    ms,
    lease: ms(400),
    longLease: ms(30_000),
    delay: Math.min(ms(300), caps.maxDelayMs),
    slack: resolution + 2,
    wait: ms(5_000),
    quiet: ms(250),
    testTimeout: ms(30_000),
  };
}

/** Throws `InvalidOptionsError` for options the suite cannot run with. */
export function assertConformanceOptions(options: ConformanceOptions): void {
  if (typeof options !== "object" || options === null) throw new InvalidOptionsError("options", "expected an options object");
  if (typeof options.name !== "string" || options.name === "") throw new InvalidOptionsError("name", "expected a non-empty string");
  if (typeof options.createBroker !== "function") throw new InvalidOptionsError("createBroker", "expected a function");
  const scale = options.timeScale;
  if (scale !== undefined && !(Number.isFinite(scale) && scale > 0)) {
    throw new InvalidOptionsError("timeScale", `expected a positive number, got ${String(scale)}`);
  }
  if (options.restart !== undefined && typeof options.restart !== "function") {
    throw new InvalidOptionsError("restart", "expected a function");
  }
  const first = options.firstConnection;
  if (first !== undefined && !(["createBroker", "stop", "start"] as const).every((k) => typeof first?.[k] === "function")) {
    throw new InvalidOptionsError("firstConnection", "expected { createBroker, stop, start } functions");
  }
  if (options.createStore !== undefined && typeof options.createStore !== "function") {
    throw new InvalidOptionsError("createStore", "expected a function");
  }
  const endpoint = options.endpoint;
  if (endpoint !== undefined && (typeof endpoint?.host !== "string" || !Number.isInteger(endpoint.port))) {
    throw new InvalidOptionsError("endpoint", "expected { host, port }");
  }
}

const probeBroker = capabilityProbe((options: ConformanceOptions) => options.createBroker({}));

/** The broker's capabilities, read from one throw-away instance (once per options object). */
export function capabilitiesOf(options: ConformanceOptions): Promise<BrokerCapabilities> {
  return probeBroker(options);
}

/** `cf-<tag>-<random>`: letters, digits and "-", well under 63 characters. */
export function uniqueQueueName(tag: string): string {
  return `cf-${tag}-${randomBytes(5).toString("hex")}`;
}

/** The physical queue core routes a job of `level` to (core's own routing, so the suite never drifts from it). */
export function physicalQueueOf(queue: string, caps: BrokerCapabilities, level: PriorityLevel = 2): string {
  return physicalQueue(queue, level, caps);
}

/** An outgoing message with a fresh id, normal priority, no delay and dedupe on. */
export function message(body: string, fields: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return { id: randomUUID(), body, priority: 2, delayMs: 0, dedupe: true, ...fields };
}

/** Publishes and expects every message to be accepted as new. */
export async function publishAll(broker: Broker, queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
  const outcomes = await broker.publish(queue, messages);
  expect(outcomes).toEqual(messages.map(() => ({ ok: true, duplicate: false })));
}

/** One delivery as a test consumer saw it. */
export interface Received {
  /** The delivery, to settle. */
  readonly delivery: Delivery;
  /** Its body. */
  readonly body: string;
  /** Its deliveryCount. */
  readonly deliveryCount: number;
  /** `performance.now()` when it arrived. */
  readonly at: number;
}

/**
 * How an inbox settles what it receives: not at all (the case settles), `true` acks each delivery
 * at once, `"next-turn"` acks it on a later turn (as an asynchronous handler would).
 */
export type AutoAck = boolean | "next-turn";

/** Collects deliveries of a consumer; with `autoAck` it acks each one and keeps any settle error. */
export class Inbox {
  /** Everything delivered so far, in arrival order. */
  readonly received: Received[] = [];
  /** Errors of automatic acks. */
  readonly settleErrors: unknown[] = [];
  readonly #autoAck: AutoAck;
  #subscription: Subscription | undefined;

  constructor(options: { readonly autoAck?: AutoAck } = {}) {
    this.#autoAck = options.autoAck ?? false;
  }

  /** Pass this to `broker.consume`. */
  readonly onDelivery = (delivery: Delivery): void => {
    this.received.push({ delivery, body: delivery.body, deliveryCount: delivery.deliveryCount, at: performance.now() });
    const ack = (): void => {
      delivery.ack().catch((error: unknown) => this.settleErrors.push(error));
    };
    if (this.#autoAck === "next-turn") setImmediate(ack);
    else if (this.#autoAck) ack();
  };

  /** Consumes `queue` on `broker` into this inbox. */
  async listen(broker: Broker, queue: string, options: ConsumeOptions): Promise<this> {
    this.#subscription = await broker.consume(queue, options, this.onDelivery);
    return this;
  }

  /** Stops the consumer `listen` started (deliveries already held stay settleable). */
  async stop(): Promise<void> {
    await this.#subscription?.stop();
  }

  /** Resolves with the deliveries once at least `count` arrived. */
  async waitForCount(count: number, timeout: number): Promise<Received[]> {
    await waitFor(() => this.received.length >= count, {
      timeout,
      message: `expected ${count} deliveries, got ${this.received.length}`,
    });
    return [...this.received];
  }

  /** The bodies received, in arrival order. */
  bodies(): string[] {
    return this.received.map((r) => r.body);
  }
}

/** Anything with `counts(queue)`: a broker or an admin. */
export interface CountsSource {
  /** Message counts of a queue. */
  counts(queue: string): Promise<QueueCounts>;
}

/** All zeros. */
export const EMPTY: QueueCounts = { waiting: 0, delayed: 0, active: 0, dead: 0 };

/**
 * Waits until the queue's counts equal `expected` (brokers with approximate counts get time to converge).
 * With `ignoreActive` (brokers whose `exactActiveCount` is false), `active` is not compared.
 */
export async function expectCounts(
  source: CountsSource,
  queue: string,
  expected: QueueCounts,
  timeout: number,
  options: { readonly ignoreActive?: boolean } = {},
): Promise<void> {
  await waitFor(
    async () => {
      const counts = await source.counts(queue);
      expect(options.ignoreActive === true ? { ...counts, active: expected.active } : counts).toEqual(expected);
      return true;
    },
    { timeout, message: `counts of "${queue}" never became ${JSON.stringify(expected)}` },
  );
}

/** What a promise rejected with; fails the case if it resolved. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection, but the promise resolved");
}

/** Asserts that `error` is a `JobsError` (by brand, as across installs) with one of `codes`. */
export function expectJobsError(error: unknown, codes: readonly JobsErrorCode[]): JobsError {
  expect(JobsError.isInstance(error), `expected a JobsError, got ${String(error)}`).toBe(true);
  expect(codes).toContain((error as JobsError).code);
  return error as JobsError;
}

/** Waits a bounded window: only to prove that something does NOT happen within it. */
export function quietWindow(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves when `signal` aborts. */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}
