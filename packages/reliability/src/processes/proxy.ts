/**
 * A fault proxy process (RELIABILITY.md d.2): `@jobs/conformance`'s TCP fault proxy in its own
 * process, so event-loop stalls of the test cannot stall the "network". Controlled over IPC: every
 * command is answered with an `ack` once it is in force. Never drops bytes.
 */
import { createFaultProxy } from "@jobs/conformance";
import type { ChildMessage, ParentMessage, ProxyParams } from "./params.js";

const params = JSON.parse(process.argv[2] ?? "{}") as ProxyParams;
const send = (message: ChildMessage): void => {
  if (process.connected) process.send?.(message);
};

const proxy = await createFaultProxy({ target: params.target, ...(params.port === undefined ? {} : { port: params.port }) });
process.on("disconnect", () => {
  void proxy.close().then(() => process.exit(0));
});

process.on("message", (message: ParentMessage) => {
  if (message.type === "close") {
    void proxy.close().then(() => process.exit(0));
    return;
  }
  if (message.type === "stop") return;
  const ack = (error?: unknown): void =>
    send({
      type: "ack",
      id: message.id,
      t: Date.now(),
      connections: proxy.connections,
      ...(error === undefined ? {} : { error: (error as Error)?.message ?? String(error) }),
    });
  try {
    if (message.type === "mode") proxy.setMode(message.mode);
    else if (message.type === "latency") proxy.setLatency(message.ms, message.jitterMs);
    else proxy.resetConnections();
    proxy.settled().then(() => ack(), ack);
  } catch (error) {
    ack(error);
  }
});

send({ type: "ready", t: Date.now(), port: proxy.address.port });
