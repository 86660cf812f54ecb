/**
 * R9-E1 and R9-E4 (RELIABILITY.md d.3): enqueue outcomes under connection resets and under a
 * broker outage, with a producer process and two workers. Every outcome must be classified
 * (accepted / definite / ambiguous), every accepted job must complete, and no enqueue may stay
 * pending past `enqueueTimeout` + 1 s.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { type AdapterName, startTarget } from "./adapters.js";
import { config, TIMINGS } from "./config.js";
import { createHarness } from "./harness.js";
import type { ScenarioResult } from "./harness-scenarios.js";
import { countBy, drainAndCheck, healthCheckOptions, PROCESS_QUEUE, proxiedSpec, proxyFor } from "./network-scenarios.js";
import type { WorkerParams } from "./processes/params.js";

const WORKERS = 2;
const CONCURRENCY = 8;

/**
 * E1: the producer enqueues the tier's jobs at 200/s (≤ 50 pending) through a proxy that
 * resets every connection every 500 ms; the workers connect directly.
 */
export async function runE1(options: { readonly test: string; readonly adapter: AdapterName }): Promise<ScenarioResult> {
  const cfg = config().processLevel.r9;
  const started = Date.now();
  const target = await startTarget(options.adapter, options.test);
  const h = createHarness(options.test, options.adapter);
  try {
    const proxy = await proxyFor(h, target);
    const params: Omit<WorkerParams, "ledgerDir"> = {
      spec: target.spec,
      queue: PROCESS_QUEUE,
      concurrency: CONCURRENCY,
      prefetch: CONCURRENCY,
      leaseMs: TIMINGS.leaseMs,
    };
    await Promise.all(Array.from({ length: WORKERS }, () => h.spawnWorker(params)));
    h.spawnProducer({
      spec: proxiedSpec(target.spec, proxy.port),
      brokerOptions: healthCheckOptions(options.adapter),
      queue: PROCESS_QUEUE,
      keyPrefix: "e",
      count: cfg.e1Jobs,
      // Paced (at full speed Redis takes 2,000 enqueues in under a second: one reset): ≥ 20 resets in tier A.
      ratePerSec: cfg.e1RatePerSec,
      maxInFlight: 50,
      handlerMs: [5, 20],
      cpuFraction: 0,
      cpuMs: 0,
      seed: 5,
    });
    let resets = 0;
    while (h.producersFinished === 0) {
      // The scenario's schedule: a reset every 500 ms until the producer is done.
      await h.until(() => h.producersFinished > 0, cfg.e1ResetEveryMs, "the reset interval").catch(() => {});
      if (h.producersFinished > 0) break;
      await proxy.resetConnections();
      resets++;
    }
    await proxy.close();
    const lastFaultT = h.faults.at(-1)?.t ?? Date.now();
    const { drain, check, lines } = await drainAndCheck(h, target, lastFaultT);
    return {
      check,
      drain,
      faults: h.faults,
      crashes: h.crashes.length,
      wallMs: Date.now() - started,
      dir: h.dir,
      figures: {
        resets,
        rejectedCodes: countBy(lines.filter((l) => l.kind === "rejected").map((l) => String(l.code))),
        disconnectedEvents: lines.filter((l) => l.kind === "disconnected").length,
      },
    };
  } finally {
    await h.close();
    await target.stop();
  }
}

/**
 * E4: a producer at 200 enqueues/s and two workers; after 5 s the broker is down for the tier's
 * outage (kill -9 of the private server, then a start on the same data; SQS, whose emulator is in
 * memory: the proxy resets every connection and refuses new ones instead), then the run goes on to its end.
 */
export async function runE4(options: {
  readonly test: string;
  readonly adapter: AdapterName;
}): Promise<ScenarioResult & { readonly outage: { readonly downAt: number; readonly readyAt: number } }> {
  const cfg = config().processLevel.r9;
  const started = Date.now();
  const target = await startTarget(options.adapter, options.test);
  const h = createHarness(options.test, options.adapter);
  try {
    const server = target.server;
    if (server === undefined) throw new Error("[reliability] E4 needs an out-of-process broker");
    const proxy = options.adapter === "sqs" ? await proxyFor(h, target) : undefined;
    const spec = proxy === undefined ? target.spec : proxiedSpec(target.spec, proxy.port);
    const brokerOptions = healthCheckOptions(options.adapter);
    const params: Omit<WorkerParams, "ledgerDir"> = {
      spec,
      brokerOptions,
      queue: PROCESS_QUEUE,
      concurrency: CONCURRENCY,
      prefetch: CONCURRENCY,
      leaseMs: TIMINGS.leaseMs,
    };
    await Promise.all(Array.from({ length: WORKERS }, () => h.spawnWorker(params)));
    h.spawnProducer({
      spec,
      brokerOptions,
      queue: PROCESS_QUEUE,
      keyPrefix: "e",
      count: Math.ceil((200 * cfg.e4RunMs) / 1000),
      durationMs: cfg.e4RunMs,
      ratePerSec: 200,
      maxInFlight: 50,
      handlerMs: [5, 20],
      cpuFraction: 0,
      cpuMs: 0,
      seed: 6,
    });
    await sleep(5_000); // the scenario's schedule
    const downAt = Date.now();
    if (proxy !== undefined) {
      // RST the open (keep-alive) connections, then refuse new ones: refusing alone leaves pooled connections working.
      await proxy.reset();
      await proxy.refuse();
    } else await server.kill("SIGKILL");
    await sleep(Math.max(0, downAt + cfg.e4OutageMs - Date.now()));
    if (proxy !== undefined) await proxy.pass();
    else await server.start();
    const readyAt = Date.now();
    if (proxy === undefined) h.fault("broker-crash", { t: downAt, until: readyAt, broker: options.adapter, mode: "crash" });
    await h.until(() => h.producersFinished === 1, cfg.e4RunMs + 60_000, "the producer to finish");
    const { drain, check, lines } = await drainAndCheck(h, target, readyAt);
    await proxy?.close();
    return {
      check,
      drain,
      faults: h.faults,
      crashes: h.crashes.length,
      wallMs: Date.now() - started,
      dir: h.dir,
      outage: { downAt, readyAt },
      figures: {
        outageMs: readyAt - downAt,
        rejectedCodes: countBy(lines.filter((l) => l.kind === "rejected").map((l) => String(l.code))),
        acceptedDuringOutage: lines.filter((l) => l.kind === "accepted" && l.t >= downAt && l.t < readyAt).length,
        firstAcceptedAfterReadyMs:
          (lines.filter((l) => l.kind === "accepted" && l.t >= readyAt).sort((a, b) => a.t - b.t)[0]?.t ?? Number.NaN) - readyAt,
      },
    };
  } finally {
    await h.close();
    await target.stop();
  }
}
