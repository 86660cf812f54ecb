import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BrokerClosedError } from "../../../src/errors.js";
import type { HeldDelivery } from "../../../src/internal/worker/held-delivery.js";
import { Shutdown } from "../../../src/internal/worker/shutdown.js";

/** A worker as shutdown sees it: a log of its calls, running jobs that end when the test says. */
function setup(timeoutMs = 30_000) {
  const log: string[] = [];
  const running = new Set<HeldDelivery>();
  let settling = 0;
  const shutdown = new Shutdown({
    timeoutMs,
    closing: () => log.push("closing"),
    stopConsumers: () => {
      log.push("stop consumers");
      return Promise.resolve();
    },
    releaseUnstarted: () => log.push("release unstarted"),
    running: () => running,
    isIdle: () => running.size === 0 && settling === 0,
    closed: () => log.push("closed"),
  });
  const job = (): HeldDelivery => {
    const item = { abortedByShutdown: false, controller: undefined } as unknown as HeldDelivery;
    running.add(item);
    return item;
  };
  /** A job ends (as the worker does: idle() once nothing runs or settles). */
  const end = (item: HeldDelivery): void => {
    running.delete(item);
    if (running.size === 0 && settling === 0) shutdown.idle();
  };
  const setSettling = (n: number): void => {
    settling = n;
    if (running.size === 0 && settling === 0) shutdown.idle();
  };
  return { shutdown, log, job, end, setSettling };
}

/** The job is aborted by shutdown exactly `ms` from now, not a millisecond earlier. */
async function expectAbortIn(item: HeldDelivery, ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms - 1);
  expect(item.abortedByShutdown).toBe(false);
  await vi.advanceTimersByTimeAsync(1);
  expect(item.abortedByShutdown).toBe(true);
  expect(item.controller?.signal.reason).toBeInstanceOf(BrokerClosedError);
}

describe("shutdown", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("stops consumers, releases what has not started and closes at once when idle; a second close returns the same promise", async () => {
    const { shutdown, log } = setup();
    const closing = shutdown.close(undefined);
    // The worker stops starting jobs synchronously.
    expect(log).toEqual(["closing", "stop consumers"]);
    expect(shutdown.close(undefined)).toBe(closing);
    await closing;
    expect(log).toEqual(["closing", "stop consumers", "release unstarted", "closed"]);
  });

  it("rejects a bad timeout before it starts closing", () => {
    const { shutdown, log } = setup();
    expect(() => shutdown.close("soon" as never)).toThrow(/timeout/);
    expect(log).toEqual([]);
  });

  it("lets running jobs and pending settlements finish within the timeout, without aborting them", async () => {
    const { shutdown, log, job, end, setSettling } = setup(10_000);
    const item = job();
    setSettling(1);
    const closing = shutdown.close(undefined);
    let closed = false;
    void closing.then(() => {
      closed = true;
    });
    await vi.advanceTimersByTimeAsync(5_000);
    end(item);
    await vi.advanceTimersByTimeAsync(0);
    expect(closed).toBe(false);
    setSettling(0);
    await closing;
    expect(item.abortedByShutdown).toBe(false);
    expect(item.controller).toBeUndefined();
    expect(log.at(-1)).toBe("closed");
  });

  it("aborts running jobs at the timeout, then waits for them at most a short grace", async () => {
    const { shutdown, log, job } = setup(2_000);
    const stuck = job();
    const closing = shutdown.close(undefined);
    await expectAbortIn(stuck, 2_000);
    expect(log).not.toContain("closed");
    // A job that ignores its signal: close() resolves after the grace (1 s) anyway.
    await vi.advanceTimersByTimeAsync(1_000);
    await closing;
    expect(log.at(-1)).toBe("closed");
  });

  it("a later close with a shorter timeout brings the abort forward; a longer one does not delay it", async () => {
    const { shutdown, job, end } = setup(30_000);
    const item = job();
    const closing = shutdown.close(undefined);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(shutdown.close("60s")).toBe(closing);
    expect(shutdown.close(500)).toBe(closing);
    await expectAbortIn(item, 500);
    end(item);
    await closing;
  });

  it("close({ timeout: 0 }) aborts at once", async () => {
    const { shutdown, job, end } = setup();
    const item = job();
    const closing = shutdown.close(0);
    await vi.advanceTimersByTimeAsync(0);
    expect(item.abortedByShutdown).toBe(true);
    end(item);
    await closing;
  });
});
