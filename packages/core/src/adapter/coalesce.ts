import type { Writable } from "node:stream";

const coalescing = new WeakSet<object>();

/**
 * For adapters: makes a client library's socket send everything written to it during one run of
 * synchronous code and the microtasks it queues in one system call (`writev`), instead of one per
 * write. Broker clients write each frame (every ack, every publish) on its own, which costs this
 * process and the broker CPU per message; a worker's acks come from many promise reactions of the
 * same turn. The socket is corked at the first write and uncorked by `process.nextTick`, which
 * runs once those microtasks are done: nothing waits for a later turn or a timer.
 *
 * Only for sockets of connections the adapter opened itself. Returns false (and changes nothing)
 * when `stream` is not a Writable with `cork`; calling it twice on one socket is harmless.
 */
export function coalesceWrites(stream: unknown): boolean {
  const s = stream as Writable | null | undefined;
  if (s == null || typeof s.write !== "function" || typeof s.cork !== "function" || typeof s.uncork !== "function") return false;
  if (coalescing.has(s)) return true;
  coalescing.add(s);
  const write = s.write;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    s.uncork();
  };
  s.write = function (this: Writable, ...args: Parameters<Writable["write"]>): boolean {
    if (!corked) {
      corked = true;
      s.cork();
      process.nextTick(uncork);
    }
    return write.apply(this, args);
  } as Writable["write"];
  return true;
}
