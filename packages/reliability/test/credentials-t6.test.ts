/**
 * T6 — credentials never reach output (RELIABILITY.md S7/T6): each adapter connects with a wrong
 * password (a private Redis with `--requirepass`, a private NATS with `--user/--pass`, a private
 * RabbitMQ node, SQS keys) and with a URL that carries the right password but reaches nothing.
 * Every error, every broker/worker event and everything written to the console or as a process
 * warning is captured with `util.inspect(…, { depth: 10 })`; the password must occur 0 times.
 */
import { randomBytes } from "node:crypto";
import { inspect } from "node:util";
import { freePort, type PrivateServer, startPrivateNats, startPrivateRedis } from "@jobs/conformance";
import { type Broker, createClient, createWorker, defineJob, WORKER_EVENTS } from "@jobs/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AdapterName, type BrokerSpec, createBroker, selectedAdapters, startTarget, type Target } from "../src/adapters.js";
import { queueName, skipCase } from "../src/in-process.js";
import { bar, writeReport } from "../src/report.js";

const canary = (tag: string): string => `T6${tag}${randomBytes(6).toString("hex")}`;

/** Runs `body` with every console method, stdout/stderr write and process warning also captured into the returned text. */
async function capture(body: (sink: (value: unknown) => void) => Promise<void>): Promise<{ text: string; items: number }> {
  const chunks: string[] = [];
  const sink = (value: unknown): void => {
    chunks.push(typeof value === "string" ? value : inspect(value, { depth: 10, showHidden: true }));
  };
  const methods = ["log", "info", "warn", "error", "debug", "trace"] as const;
  const saved = methods.map((m) => console[m]);
  const out = process.stdout.write;
  const err = process.stderr.write;
  for (const [i, m] of methods.entries()) {
    console[m] = (...args: unknown[]) => {
      for (const a of args) sink(a);
      (saved[i] as (...a: unknown[]) => void).apply(console, args);
    };
  }
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    sink(String(chunk));
    return (out as (...a: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
    sink(String(chunk));
    return (err as (...a: unknown[]) => boolean).call(process.stderr, chunk, ...rest);
  }) as typeof process.stderr.write;
  const onWarning = (w: unknown): void => sink(w);
  process.on("warning", onWarning);
  try {
    await body(sink);
  } finally {
    for (const [i, m] of methods.entries()) console[m] = saved[i] as (typeof console)[typeof m];
    process.stdout.write = out;
    process.stderr.write = err;
    process.off("warning", onWarning);
  }
  return { text: chunks.join("\n"), items: chunks.length };
}

/**
 * Opens a broker with `overrides`, records its events, tries an enqueue and a worker start (each
 * bounded by the broker's 2-s request timeout), and feeds every error and event into `sink`.
 */
async function exercise(spec: BrokerSpec, overrides: Record<string, unknown>, sink: (value: unknown) => void): Promise<number> {
  let failures = 0;
  let broker: Broker | undefined;
  try {
    broker = createBroker(spec, overrides);
  } catch (error) {
    sink(error);
    return 1;
  }
  for (const name of ["config-warning", "disconnected", "reconnected", "insecure-connection", "error"] as const)
    broker.on(name, (event) => {
      failures++;
      sink(event);
    });
  const job = defineJob<{ n: number }>({ name: "t6.probe", queue: queueName("t6") });
  const bounded = <T>(p: Promise<T>): Promise<T> =>
    Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error("t6: still pending after 6 s")), 6_000))]);
  try {
    await bounded(createClient({ broker }).enqueue(job, { n: 1 }));
  } catch (error) {
    failures++;
    sink(error);
  }
  const worker = createWorker({ broker, lease: 5_000 });
  for (const name of WORKER_EVENTS) worker.on(name, (event) => sink(event));
  worker.handle(job, () => undefined);
  try {
    await bounded(worker.start());
  } catch (error) {
    failures++;
    sink(error);
  }
  await bounded(worker.close({ timeout: 500 })).catch(sink);
  await bounded(broker.close()).catch(sink);
  return failures;
}

describe.each(selectedAdapters())("T6 credentials on %s", (adapter: AdapterName) => {
  if (adapter === "memory") {
    skipCase("T6", adapter, "the memory broker has no credentials");
    return;
  }
  const right = canary("right");
  const wrong = canary("wrong");
  let server: PrivateServer | undefined;
  let target: Target | undefined;
  let base: BrokerSpec;
  beforeAll(async () => {
    if (adapter === "redis") {
      server = await startPrivateRedis(["--requirepass", right]);
      base = { adapter, url: `redis://127.0.0.1:${server.port}`, namespace: `t6${right.slice(-6)}` };
    } else if (adapter === "nats") {
      server = await startPrivateNats(["--user", "jobs", "--pass", right]);
      base = { adapter, url: `nats://127.0.0.1:${server.port}`, namespace: `t6${right.slice(-6)}` };
    } else {
      target = await startTarget(adapter, "t6");
      base = target.spec;
    }
  });
  afterAll(async () => {
    await server?.stop();
    await target?.stop();
  });

  /** The URL of the private broker with `user:password`, or (closed) a port where nothing listens. */
  async function url(password: string, closed: boolean): Promise<string> {
    const u = new URL(base.url);
    if (closed) u.port = String(await freePort());
    u.username = adapter === "rabbitmq" ? "guest" : "jobs";
    u.password = password;
    return u.toString();
  }

  const cases: { name: string; secret: () => string; run: () => Promise<{ spec: BrokerSpec; overrides: Record<string, unknown> }> }[] =
    adapter === "sqs"
      ? [
          {
            name: "T6-keys",
            secret: () => wrong,
            // The emulator accepts any keys: the secret key travels to every call, and a missing queue makes one fail.
            run: async () => ({
              spec: base,
              overrides: { clientConfig: { credentials: { accessKeyId: "AKIAT6CANARY", secretAccessKey: wrong } }, queues: "verify" },
            }),
          },
          {
            name: "T6-url",
            secret: () => right,
            run: async () => ({
              spec: { ...base, url: await url(right, true) },
              overrides: { clientConfig: { credentials: { accessKeyId: "AKIAT6CANARY", secretAccessKey: right } }, requestTimeout: 2_000 },
            }),
          },
        ]
      : [
          {
            name: "T6-wrong-password",
            secret: () => wrong,
            run: async () => ({ spec: { ...base, url: await url(wrong, false) }, overrides: { requestTimeout: 2_000 } }),
          },
          {
            name: "T6-url",
            secret: () => right,
            run: async () => ({ spec: { ...base, url: await url(right, true) }, overrides: { requestTimeout: 2_000 } }),
          },
        ];

  for (const c of cases) {
    it(`${c.name} no occurrence of the password in errors, events or output`, async () => {
      const { spec, overrides } = await c.run();
      let failures = 0;
      const captured = await capture(async (sink) => {
        failures = await exercise(spec, overrides, sink);
      });
      const secret = c.secret();
      const occurrences = captured.text.split(secret).length - 1;
      const encoded = captured.text.split(encodeURIComponent(secret)).length - 1;
      const report = writeReport({
        test: c.name,
        adapter,
        seed: 0,
        figures: {
          captured: captured.items,
          capturedChars: captured.text.length,
          failuresSurfaced: failures,
          sample: captured.text.slice(0, 600),
        },
        bars: [
          bar("occurrences of the password", occurrences, "= 0", occurrences === 0),
          bar("occurrences URL-encoded", encoded, "= 0", encoded === 0),
          bar("failures surfaced (the case exercised an error path)", failures, ">= 1", failures >= 1),
        ],
      });
      expect(report.verdict).toBe("pass");
    });
  }
});
