import { MemoryQueue, type ServerState } from "./internal/queue.js";

/**
 * The state of an in-memory broker: its queues. Several `createMemoryBroker({ server })` share one
 * server the way several connections share a real broker (publish through one, consume through
 * another; closing one releases only its own deliveries).
 */
export class MemoryServer implements ServerState {
  /** @internal */
  readonly queues: Map<string, MemoryQueue> = new Map();
  /** @internal */
  readonly dedupe: Map<string, number> = new Map();
  /** @internal */
  nextKey: number = 1;
  /** @internal */
  paused: boolean = false;
  /** @internal Dispatches run as microtasks since the last yield to the event loop. */
  burst: number = 0;

  /** @internal */
  queue(name: string): MemoryQueue {
    let queue = this.queues.get(name);
    if (queue === undefined) {
      queue = new MemoryQueue(this, name);
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** Stop handing out deliveries (publishing still works). */
  pause(): void {
    this.paused = true;
  }

  /** Resume handing out deliveries. */
  resume(): void {
    this.paused = false;
    for (const queue of this.queues.values()) queue.scheduleDispatch();
  }

  /** True when no queue has a ready or in-flight message, nor a delayed one due within `withinMs`. */
  idle(withinMs = 0): boolean {
    const horizon = Date.now() + withinMs;
    for (const queue of this.queues.values()) {
      if (queue.readyCount > 0 || queue.active.size > 0) return false;
      const next = queue.delayed.peekKey();
      if (next !== undefined && next <= horizon) return false;
    }
    return true;
  }
}

/** Creates the state a group of memory brokers share. */
export function createMemoryServer(): MemoryServer {
  return new MemoryServer();
}
