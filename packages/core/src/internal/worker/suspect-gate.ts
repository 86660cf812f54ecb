/**
 * The suspect gate: applies the rules of suspects.ts. The worker is *reserved* for one suspect at a
 * time: the suspect waits until nothing else runs or settles and the consumers have paused, then
 * runs alone; suspects delivered while it waits are released keeping their counts, and nothing else
 * starts until it is over.
 */
import type { Subscription } from "../../broker.js";
import type { HeldDelivery } from "./held-delivery.js";
import type { PriorityBuffer } from "./priority-buffer.js";
import { isSuspect, KEPT_COUNT_RELEASE_DELAY_MS, pickSuspect, SuspectTurn } from "./suspects.js";

/** What the gate needs from the worker. */
export interface SuspectGateHost {
  /** The worker's buffer, where suspects wait beside other jobs. */
  readonly buffer: PriorityBuffer;
  /** The count from which a delivery is a suspect (`suspectThreshold(maxDeliveries)`). */
  readonly threshold: number;
  /** The consumers to pause while a suspect waits to start. */
  subscriptions(): readonly Subscription[];
  /** Nothing settles and the worker is running (it is already known that nothing runs). */
  canStart(): boolean;
  /** The suspect's lease ran out while it waited. */
  leaseExpired(item: HeldDelivery): boolean;
  releaseExpired(item: HeldDelivery): void;
  releaseKeepingCount(item: HeldDelivery, delayMs: number): void;
  /** Starts the suspect's handler. */
  run(item: HeldDelivery): void;
  /** Starts buffered jobs if it can. */
  pump(): void;
}

export class SuspectGate {
  readonly #host: SuspectGateHost;
  readonly #turn: SuspectTurn;
  /** Suspects in the buffer. */
  #buffered = 0;
  /** The suspect the worker is reserved for: waiting to start (`#waiting`), or running alone. */
  #reservedFor: HeldDelivery | undefined;
  #waiting = false;
  /** Consumers paused for the suspect. */
  #paused = false;
  /** Pauses not yet resolved. */
  #pausing = 0;

  constructor(host: SuspectGateHost) {
    this.#host = host;
    this.#turn = new SuspectTurn(() => host.pump());
  }

  /** Suspects in the buffer: while there are any, the worker starts nothing but them. */
  get buffered(): number {
    return this.#buffered;
  }

  /** True while the worker is reserved for a suspect: nothing else starts. */
  get reserved(): boolean {
    return this.#reservedFor !== undefined;
  }

  /** The suspect reserved for and not started yet (held, but neither buffered nor running). */
  get waiting(): HeldDelivery | undefined {
    return this.#waiting ? this.#reservedFor : undefined;
  }

  /**
   * A delivery is about to be buffered: true to buffer it. While a suspect waits to start, another
   * suspect is released keeping its count (false). Once one runs, a release cut short by its crash
   * would leave the job twice in the queue: later suspects wait in the buffer for it instead
   * (consumers that pause send none).
   */
  admit(item: HeldDelivery): boolean {
    if (item.count < this.#host.threshold) return true;
    if (this.#waiting) {
      this.#host.releaseKeepingCount(item, KEPT_COUNT_RELEASE_DELAY_MS);
      return false;
    }
    this.#buffered++;
    return true;
  }

  /**
   * With suspects buffered and nothing running or settling: reserves the worker for the next one,
   * true if it did. False while a turn passes (`SuspectTurn`: it calls `pump` again), and after
   * releasing every other suspect buffered: it is chosen once those releases reached the broker,
   * so a crash while it runs finds no other suspect held here.
   */
  reserveNext(): boolean {
    if (!this.#turn.ready()) return false;
    const suspect = this.#take();
    if (suspect === undefined) return false;
    this.#reserve(suspect);
    return true;
  }

  /** The suspect to start (removed from the buffer), or undefined after releasing the other suspects. Highest level first, then `pickSuspect`. */
  #take(): HeldDelivery | undefined {
    const { buffer, threshold } = this.#host;
    const chosen = buffer.find((level) => pickSuspect(level, threshold));
    if (chosen === undefined) {
      this.#buffered = 0;
      return undefined;
    }
    if (this.#buffered > 1) {
      for (const item of buffer.removeWhere((item) => item !== chosen && isSuspect(item, threshold))) {
        this.#buffered--;
        this.#host.releaseKeepingCount(item, KEPT_COUNT_RELEASE_DELAY_MS);
      }
      return undefined;
    }
    buffer.remove(chosen);
    this.#buffered--;
    return chosen;
  }

  /**
   * Reserves the worker for a suspect: nothing else starts, suspects delivered meanwhile are
   * released, and the consumers that can pause stop asking for deliveries. The suspect starts once
   * they have (no request left that could take messages this process has not seen) and nothing settles.
   */
  #reserve(suspect: HeldDelivery): void {
    this.#reservedFor = suspect;
    this.#waiting = true;
    const pauses: Promise<void>[] = [];
    for (const s of this.#host.subscriptions()) {
      if (s.pause !== undefined) pauses.push(s.pause().catch(() => {}));
    }
    if (pauses.length === 0) {
      this.startReserved();
      return;
    }
    this.#paused = true;
    this.#pausing++;
    void Promise.all(pauses).then(() => {
      this.#pausing--;
      this.startReserved();
    });
  }

  /** Starts the suspect waiting to start, if the consumers have paused and nothing settles. */
  startReserved(): void {
    const item = this.#reservedFor;
    if (item === undefined || !this.#waiting || this.#pausing > 0 || !this.#host.canStart()) return;
    this.#waiting = false;
    if (this.#host.leaseExpired(item)) {
      this.#reservedFor = undefined;
      this.#resume();
      this.#host.releaseExpired(item);
      return;
    }
    this.#host.run(item);
  }

  /** A running job is over: if it was the suspect, the reservation ends. */
  finished(item: HeldDelivery): void {
    if (this.#reservedFor !== item) return;
    this.#reservedFor = undefined;
    this.#resume();
  }

  /** On close, the buffer drained: forgets buffered suspects; returns the suspect waiting to start, if any, no longer reserved. */
  abandon(): HeldDelivery | undefined {
    this.#buffered = 0;
    const waiting = this.waiting;
    if (waiting !== undefined) {
      this.#reservedFor = undefined;
      this.#waiting = false;
    }
    return waiting;
  }

  #resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    for (const s of this.#host.subscriptions()) s.resume?.();
  }
}
