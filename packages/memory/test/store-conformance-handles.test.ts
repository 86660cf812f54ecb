import { runStoreConformance } from "@jobs/conformance";
import { type JobStore, StoreClosedError, StoreConnectionError } from "@jobs/core/adapter";
import { createMemoryStore } from "../src/index.js";

/**
 * The store suite's own check of the cases a memory store skips: one memory store reached through
 * handles the way connections reach a server (instances share it and close only their own handle,
 * capabilities say not in-process and durable), and a switch that makes every call fail with a
 * retryable StoreConnectionError, as a killed server would. It runs the cross-instance, restart and
 * skip cases; real stores (Redis) run them against real servers in their own packages.
 */
const shared = createMemoryStore();
let down = false;
function connect(): JobStore {
  let closed = false;
  const wrap =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      if (closed) throw new StoreClosedError();
      if (down) throw new StoreConnectionError("[jobs] [fake] down");
      return fn(...a);
    };
  return {
    name: "shared-memory",
    capabilities: { notify: true, inProcess: false, durable: true },
    insert: wrap((r) => shared.insert(r)),
    markPublished: wrap((m) => shared.markPublished(m)),
    claim: wrap((r) => shared.claim(r)),
    renew: wrap((r) => shared.renew(r)),
    finish: wrap((r) => shared.finish(r)),
    progress: wrap((i, f, p) => shared.progress(i, f, p)),
    transition: wrap((r) => shared.transition(r)),
    cancel: wrap((i) => shared.cancel(i)),
    get: wrap((i) => shared.get(i)),
    list: wrap((q) => shared.list(q)),
    unpublished: wrap((o, l) => shared.unpublished(o, l)),
    prune: wrap((p) => shared.prune(p)),
    lease: wrap((n, o, t) => shared.lease(n, o, t)),
    watch: wrap((l) => shared.watch!(l)),
    close: async () => {
      closed = true;
    },
  };
}
runStoreConformance({
  name: "memory behind handles (suite self-check)",
  createStore: connect,
  skip: ["get of an unknown id resolves to undefined"],
  restart: {
    createStore: connect,
    kill: async () => {
      down = true;
    },
    start: async () => {
      down = false;
    },
  },
});
