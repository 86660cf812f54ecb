import { BrokerClosedError, type DeadLetter, type Duration, parseDuration, type QueueCounts } from "@jobs/core/adapter";
import type { MemoryConnection } from "./connection.js";
import type { MemoryServer } from "./server.js";

/** Exact counts of a queue. */
export function counts(connection: MemoryConnection, queue: string): Promise<QueueCounts> {
  if (connection.closed) return Promise.reject(new BrokerClosedError());
  return Promise.resolve(connection.server.queue(queue).counts());
}

/** A page of a queue's dead letters, oldest first. */
export function listDeadLetters(
  connection: MemoryConnection,
  queue: string,
  options: { readonly limit: number; readonly offset?: number },
): Promise<DeadLetter[]> {
  if (connection.closed) return Promise.reject(new BrokerClosedError());
  const offset = options.offset ?? 0;
  return Promise.resolve(connection.server.queue(queue).dead.slice(offset, offset + options.limit));
}

/** Removes the dead letters with these keys; resolves to how many there were. */
export function removeDeadLetters(connection: MemoryConnection, queue: string, keys: readonly string[]): Promise<number> {
  if (connection.closed) return Promise.reject(new BrokerClosedError());
  const q = connection.server.queue(queue);
  const remove = new Set(keys);
  const before = q.dead.length;
  q.dead = q.dead.filter((d) => !remove.has(d.key));
  return Promise.resolve(before - q.dead.length);
}

/** Removes a queue's waiting, delayed and dead messages (not those in flight, nor the dedupe memory). */
export function purge(connection: MemoryConnection, queue: string): Promise<void> {
  if (connection.closed) return Promise.reject(new BrokerClosedError());
  connection.server.queue(queue).purge();
  return Promise.resolve();
}

/** Options of `MemoryBroker.drain`. */
export interface DrainOptions {
  /** Reject after this long. @default "30s" */
  readonly timeout?: Duration;
  /** Also wait for delayed jobs due within this long. @default 0 */
  readonly delayedWithin?: Duration;
}

/** Resolves once `server` is idle (see `MemoryServer.idle`); polls every 2 ms. */
export async function drain(server: MemoryServer, options: DrainOptions = {}): Promise<void> {
  const timeoutMs = parseDuration(options.timeout ?? "30s", "timeout");
  const withinMs = parseDuration(options.delayedWithin ?? 0, "delayedWithin");
  const deadline = Date.now() + timeoutMs;
  while (!server.idle(withinMs)) {
    if (Date.now() > deadline) throw new Error(`[jobs] [memory] drain: still busy after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
