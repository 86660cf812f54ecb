import { describe, expect, it } from "vitest";
import type { Subscription } from "../../../src/broker.js";
import type { HeldDelivery } from "../../../src/internal/worker/held-delivery.js";
import { PriorityBuffer } from "../../../src/internal/worker/priority-buffer.js";
import { SuspectGate } from "../../../src/internal/worker/suspect-gate.js";
import { KEPT_COUNT_RELEASE_DELAY_MS } from "../../../src/internal/worker/suspects.js";

/** Only the fields the gate reads. */
function held(id: string, count: number, level = 2): HeldDelivery {
  return { envelope: { id }, count, level, bufferedAt: 0 } as unknown as HeldDelivery;
}

/** A consumer that can pause: its pause resolves when the test says. */
function pausable(): { subscription: Subscription; paused: () => void; log: string[] } {
  const log: string[] = [];
  let resolvePause = (): void => {};
  const subscription: Subscription = {
    stop: () => Promise.resolve(),
    pause: () => {
      log.push("pause");
      return new Promise<void>((resolve) => {
        resolvePause = resolve;
      });
    },
    resume: () => log.push("resume"),
  };
  return { subscription, paused: () => resolvePause(), log };
}

/** A gate over a real buffer (threshold 2: a second delivery is a suspect), recording what it asks of the worker. */
function setup(subscriptions: Subscription[] = []) {
  const buffer = new PriorityBuffer(60_000);
  const ran: string[] = [];
  const keptCount: [string, number][] = [];
  const expired: string[] = [];
  const world = { canStart: true, expiredIds: new Set<string>() };
  let turn: () => void = () => {};
  const gate = new SuspectGate({
    buffer,
    threshold: 2,
    subscriptions: () => subscriptions,
    canStart: () => world.canStart,
    leaseExpired: (item) => world.expiredIds.has(item.envelope.id),
    releaseExpired: (item) => expired.push(item.envelope.id),
    releaseKeepingCount: (item, delayMs) => keptCount.push([item.envelope.id, delayMs]),
    run: (item) => ran.push(item.envelope.id),
    pump: () => turn(),
  });
  /** Admits and buffers as the worker does. */
  const deliver = (item: HeldDelivery): boolean => {
    const admitted = gate.admit(item);
    if (admitted) buffer.push(item);
    return admitted;
  };
  /** Resolves on the gate's next call to pump (the turn after it could first choose). */
  const nextTurn = (): Promise<void> =>
    new Promise((resolve) => {
      turn = resolve;
    });
  /** One turn of `SuspectTurn`, then what the pump would do: true if the gate reserved the worker. */
  const reserve = async (): Promise<boolean> => {
    const turned = nextTurn();
    expect(gate.reserveNext()).toBe(false);
    await turned;
    return gate.reserveNext();
  };
  return { gate, buffer, ran, keptCount, expired, world, deliver, reserve };
}

describe("the suspect gate", () => {
  it("counts suspects from the threshold on, not first deliveries", () => {
    const { gate, deliver } = setup();
    expect(deliver(held("first", 1))).toBe(true);
    expect(gate.buffered).toBe(0);
    expect(deliver(held("suspect", 2))).toBe(true);
    expect(gate.buffered).toBe(1);
    expect(gate.reserved).toBe(false);
  });

  it("chooses a suspect one turn after it could first, then runs it alone", async () => {
    const { gate, buffer, ran, deliver, reserve } = setup();
    const suspect = held("suspect", 3);
    deliver(held("first", 1));
    deliver(suspect);
    expect(await reserve()).toBe(true);
    // No consumer to pause and nothing settles: it starts at once, taken from the buffer.
    expect(ran).toEqual(["suspect"]);
    expect(gate.reserved).toBe(true);
    expect(gate.waiting).toBeUndefined();
    expect(gate.buffered).toBe(0);
    expect(buffer.size).toBe(1);
    // Another job ending changes nothing; the suspect ending ends the reservation.
    gate.finished(held("other", 1));
    expect(gate.reserved).toBe(true);
    gate.finished(suspect);
    expect(gate.reserved).toBe(false);
  });

  it("holds one suspect at a time: releases the others keeping their counts before choosing the closest to the limit", async () => {
    const { gate, ran, keptCount, deliver, reserve } = setup();
    const [a, b, c] = [held("a", 2), held("b", 4), held("c", 3, 0)];
    for (const item of [a, b, c]) deliver(item);
    // Three buffered: the other two go back first, nothing is reserved yet.
    expect(await reserve()).toBe(false);
    expect(keptCount).toEqual([
      ["c", KEPT_COUNT_RELEASE_DELAY_MS],
      ["a", KEPT_COUNT_RELEASE_DELAY_MS],
    ]);
    expect(gate.buffered).toBe(1);
    expect(ran).toEqual([]);
    expect(await reserve()).toBe(true);
    expect(ran).toEqual(["b"]);
    gate.finished(b);
    expect(gate.reserved).toBe(false);
  });

  it("prefers a suspect of a higher priority level", async () => {
    const { ran, keptCount, deliver, reserve } = setup();
    deliver(held("high", 2, 4));
    deliver(held("close-to-limit", 9, 1));
    expect(await reserve()).toBe(false);
    expect(keptCount).toEqual([["close-to-limit", KEPT_COUNT_RELEASE_DELAY_MS]]);
    expect(await reserve()).toBe(true);
    expect(ran).toEqual(["high"]);
  });

  it("pauses the consumers, releases suspects delivered meanwhile, starts once paused and nothing settles, resumes after", async () => {
    const consumer = pausable();
    const { gate, ran, keptCount, world, deliver, reserve } = setup([consumer.subscription]);
    const suspect = held("suspect", 2);
    deliver(suspect);
    world.canStart = false;
    expect(await reserve()).toBe(true);
    expect(consumer.log).toEqual(["pause"]);
    expect(gate.waiting).toBe(suspect);
    // While it waits: another suspect goes back at once, a first delivery is buffered.
    expect(deliver(held("late-suspect", 5))).toBe(false);
    expect(keptCount).toEqual([["late-suspect", KEPT_COUNT_RELEASE_DELAY_MS]]);
    expect(deliver(held("first", 1))).toBe(true);
    consumer.paused();
    await new Promise((resolve) => setImmediate(resolve));
    // Paused, but a settlement is pending: not yet.
    expect(ran).toEqual([]);
    world.canStart = true;
    gate.startReserved();
    expect(ran).toEqual(["suspect"]);
    expect(gate.waiting).toBeUndefined();
    // Once it runs, a later suspect waits in the buffer instead of being released.
    expect(deliver(held("after-start", 3))).toBe(true);
    expect(gate.buffered).toBe(1);
    gate.finished(suspect);
    expect(consumer.log).toEqual(["pause", "resume"]);
    expect(gate.reserved).toBe(false);
  });

  it("releases a suspect whose lease ran out while it waited instead of running it, and resumes the consumers", async () => {
    const consumer = pausable();
    const { gate, ran, expired, world, deliver, reserve } = setup([consumer.subscription]);
    deliver(held("suspect", 2));
    expect(await reserve()).toBe(true);
    world.expiredIds.add("suspect");
    consumer.paused();
    await new Promise((resolve) => setImmediate(resolve));
    expect(ran).toEqual([]);
    expect(expired).toEqual(["suspect"]);
    expect(consumer.log).toEqual(["pause", "resume"]);
    expect(gate.reserved).toBe(false);
  });

  it("on close, gives up its reservation and returns the suspect still waiting", async () => {
    const consumer = pausable();
    const { gate, keptCount, deliver, reserve } = setup([consumer.subscription]);
    const closest = held("closest", 3);
    deliver(held("suspect", 2));
    deliver(closest);
    expect(gate.buffered).toBe(2);
    expect(await reserve()).toBe(false);
    expect(keptCount).toEqual([["suspect", KEPT_COUNT_RELEASE_DELAY_MS]]);
    expect(await reserve()).toBe(true);
    expect(gate.waiting).toBe(closest);
    expect(gate.abandon()).toBe(closest);
    expect(gate.reserved).toBe(false);
    expect(gate.buffered).toBe(0);
    expect(gate.abandon()).toBeUndefined();
  });
});
