/** The `insecure-connection` warning, said the same way by every adapter. */
import type { BrokerEventMap } from "../broker.js";
import type { Emitter } from "../events.js";

/**
 * Emits `insecure-connection` with `[jobs] [<adapter>] <text>` on a later turn, so that listeners
 * registered right after the factory returned hear it. Adapters decide when a connection is
 * insecure (a host not on loopback, `isLoopbackHost`, reached without TLS or credentials); this
 * says it.
 */
export function warnInsecureConnection(events: Emitter<BrokerEventMap>, adapter: string, text: string): void {
  const message = `[jobs] [${adapter}] ${text}`;
  setImmediate(() => events.emit("insecure-connection", { code: "JOBS_INSECURE_CONNECTION", message })).unref();
}
