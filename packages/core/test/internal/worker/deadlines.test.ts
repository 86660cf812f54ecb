import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { clock } from "../../../src/clock.js";
import { JobTimeoutError } from "../../../src/errors.js";
import { IntrusiveList } from "../../../src/internal/list.js";
import { Deadlines } from "../../../src/internal/worker/deadlines.js";
import type { HeldDelivery } from "../../../src/internal/worker/held-delivery.js";

/** A running job with only the fields the deadline timer reads. */
function running(list: IntrusiveList<HeldDelivery>, id: string, timeout: number): HeldDelivery {
  const item = {
    envelope: { id, timeout },
    completed: false,
    overdue: false,
    controller: undefined,
    startedAt: clock.now(),
    deadline: Number.POSITIVE_INFINITY,
    prev: undefined,
    next: undefined,
  } as unknown as HeldDelivery;
  list.add(item);
  return item;
}

/**
 * A deadline timer over `list`. A timed-out job leaves the list (mid-iteration), as the worker's
 * does when its handler has ended; with `keep`, it stays overdue, as a handler that runs on does.
 */
function setup(keep = false): { list: IntrusiveList<HeldDelivery>; deadlines: Deadlines; timedOut: string[]; overdue: string[] } {
  const list = new IntrusiveList<HeldDelivery>();
  const timedOut: string[] = [];
  const overdue: string[] = [];
  const deadlines = new Deadlines({
    running: () => list,
    timedOut: (item, error) => {
      expect(error).toBeInstanceOf(JobTimeoutError);
      expect(item.controller?.signal.reason).toBe(error);
      item.completed = true;
      if (keep) item.overdue = true;
      else list.delete(item);
      timedOut.push(item.envelope.id);
    },
    overdueAfterMs: 500,
    overdue: (item, overdueMs) => overdue.push(`${item.envelope.id}+${overdueMs}`),
  });
  return { list, deadlines, timedOut, overdue };
}

describe("handler deadlines", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    // The monotonic clock follows the fake time.
    vi.spyOn(clock, "now").mockImplementation(() => Date.now());
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it("times each job out at its deadline, with one timer armed for the earliest", () => {
    const { list, deadlines, timedOut } = setup();
    const a = running(list, "a", 1_000);
    const b = running(list, "b", 3_000);
    const c = running(list, "c", 2_000);
    for (const item of [a, b, c]) deadlines.watch(item, item.envelope.timeout);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(999);
    expect(timedOut).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(timedOut).toEqual(["a"]);
    expect(a.controller?.signal.aborted).toBe(true);
    expect(b.controller).toBeUndefined();
    // Re-armed for the next deadline only.
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(1_000);
    expect(timedOut).toEqual(["a", "c"]);
    vi.advanceTimersByTime(1_000);
    expect(timedOut).toEqual(["a", "c", "b"]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("re-arms for a deadline earlier than the armed one", () => {
    const { list, deadlines, timedOut } = setup();
    deadlines.watch(running(list, "slow", 5_000), 5_000);
    deadlines.watch(running(list, "fast", 100), 100);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(100);
    expect(timedOut).toEqual(["fast"]);
    vi.advanceTimersByTime(4_899);
    expect(timedOut).toEqual(["fast"]);
    vi.advanceTimersByTime(1);
    expect(timedOut).toEqual(["fast", "slow"]);
  });

  it("skips jobs already over and disarms when no deadline is left", () => {
    const { list, deadlines, timedOut } = setup();
    const done = running(list, "done", 100);
    deadlines.watch(done, 100);
    done.completed = true;
    vi.advanceTimersByTime(100);
    expect(timedOut).toEqual([]);
    expect(done.controller).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("reports a timed-out handler still running overdueAfter past its timeout, once", () => {
    const { list, deadlines, timedOut, overdue } = setup(true);
    const a = running(list, "a", 1_000);
    const b = running(list, "b", 1_200);
    deadlines.watch(a, 1_000);
    deadlines.watch(b, 1_200);
    vi.advanceTimersByTime(1_200);
    expect(timedOut).toEqual(["a", "b"]);
    // b's handler ends before its grace is over: never reported.
    b.overdue = false;
    list.delete(b);
    vi.advanceTimersByTime(299);
    expect(overdue).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(overdue).toEqual(["a+500"]);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(overdue).toEqual(["a+500"]);
    expect(timedOut).toEqual(["a", "b"]);
  });

  it("stop() clears the timer", () => {
    const { list, deadlines, timedOut } = setup();
    deadlines.watch(running(list, "a", 100), 100);
    deadlines.stop();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(1_000);
    expect(timedOut).toEqual([]);
  });
});
