// SQS-specific behaviour, against the emulator (or JOBS_SQS_ENDPOINT): names, batching, verify-only
// queues, FIFO, request timeouts, idle cost, requests per job and credentials.
import { randomUUID } from "node:crypto";
import { inspect } from "node:util";
import { CreateQueueCommand, GetQueueUrlCommand } from "@aws-sdk/client-sqs";
import { createFaultProxy, freePort } from "@jobs/conformance";
import { type Broker, JobsError } from "@jobs/core";
import type { Delivery, OutgoingMessage, PublishOutcome } from "@jobs/core/adapter";
import { waitFor } from "@jobs/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { createSqsBroker, type SqsBrokerOptions, sqsQueueNames } from "../src/index.js";
import { countingClient, credentials, endpoint, endpointUrl, onEmulator } from "./emulator.js";

const opened: Broker[] = [];
afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((b) => b.close()));
});

/** A broker on the test SQS with test settings; `client` counts requests when given. */
function broker(options: SqsBrokerOptions = {}): Broker {
  const b = createSqsBroker({
    ...(options.client === undefined ? { url: endpointUrl, clientConfig: { credentials } } : {}),
    waitTimeSeconds: 1,
    requestTimeout: "3s",
    countsIncludeInFlight: onEmulator,
    ...options,
  });
  opened.push(b);
  return b;
}

const queue = (tag: string): string => `t-${tag}-${randomUUID().slice(0, 8)}`;
const msg = (body: string, fields: Partial<OutgoingMessage> = {}): OutgoingMessage => ({
  id: randomUUID(),
  body,
  priority: 2,
  delayMs: 0,
  dedupe: true,
  ...fields,
});
const codeOf = (outcome: PublishOutcome | undefined): string | undefined => (outcome?.ok === false ? outcome.error.code : undefined);

/** Collects deliveries, acking each when `ack` is set. */
function collector(ack = true): { deliveries: Delivery[]; onDelivery: (d: Delivery) => void } {
  const deliveries: Delivery[] = [];
  return {
    deliveries,
    onDelivery: (d) => {
      deliveries.push(d);
      if (ack) void d.ack().catch(() => {});
    },
  };
}

describe("queue names", () => {
  it("keeps SQS-safe names readable and maps every other name deterministically to distinct legal names", () => {
    expect(sqsQueueNames("emails__p2")).toEqual({ queue: "jobs-emails__p2", dead: "jobs-emails__p2-dead" });
    expect(sqsQueueNames("emails", { prefix: "app_", fifo: true })).toEqual({ queue: "app_emails.fifo", dead: "app_emails-dead.fifo" });
    const odd = ["a.b", "a b", "a/b", "ünï", "a-dead", "x".repeat(67), `${"x".repeat(66)}__p4`, "a-b"];
    const mapped = odd.map((q) => sqsQueueNames(q, { fifo: true }));
    expect(odd.map((q) => sqsQueueNames(q, { fifo: true }))).toEqual(mapped);
    const all = mapped.flatMap((n) => [n.queue, n.dead]);
    expect(new Set(all).size).toBe(all.length);
    for (const name of all) {
      expect(name.length).toBeLessThanOrEqual(80);
      expect(name).toMatch(/^[A-Za-z0-9_-]+\.fifo$/);
    }
  });

  it("rejects a bad prefix or queue name with InvalidOptionsError before any request", async () => {
    const { client, total } = countingClient(`http://127.0.0.1:${await freePort()}`);
    expect(() => createSqsBroker({ client, prefix: "bad.prefix" })).toThrow(/invalid option "prefix"/);
    expect(() => createSqsBroker({ client, prefix: "p".repeat(41) })).toThrow(/invalid option "prefix"/);
    const b = broker({ client });
    await expect(b.publish("", [msg("x")])).rejects.toMatchObject({ code: "invalid-options" });
    await expect(b.consume("", { prefetch: 1, leaseMs: 1000 }, () => {})).rejects.toMatchObject({ code: "invalid-options" });
    await expect(b.counts("")).rejects.toMatchObject({ code: "invalid-options" });
    expect(total()).toBe(0);
    client.destroy();
  });
});

describe("options", () => {
  it("rejects options it cannot honour at construction, naming the field", () => {
    const { client } = countingClient();
    const bad: [SqsBrokerOptions, string][] = [
      [{ client, url: endpointUrl }, "url"],
      [{ client, endpoint: endpointUrl }, "endpoint"],
      [{ client, region: "eu-west-1" }, "region"],
      [{ url: endpointUrl, waitTimeSeconds: 0 }, "waitTimeSeconds"],
      [{ url: endpointUrl, waitTimeSeconds: 21 }, "waitTimeSeconds"],
      [{ url: endpointUrl, maxPayloadBytes: 2_000_000 }, "maxPayloadBytes"],
      [{ url: endpointUrl, queues: "maybe" as "create" }, "queues"],
      [{ url: endpointUrl, requestTimeout: "1ms" }, "requestTimeout"],
      [{ url: endpointUrl, maxReceiveCount: -1 }, "maxReceiveCount"],
    ];
    for (const [options, field] of bad) expect(() => createSqsBroker(options), field).toThrow(`invalid option "${field}"`);
    client.destroy();
  });
});

describe("insecure endpoints", () => {
  it("emits insecure-connection for a plain-http endpoint off this machine, not for loopback or https", async () => {
    const seen = new Map<string, number>();
    for (const endpoint of ["http://10.0.0.7:9324", "http://127.0.0.1:9324", "https://sqs.eu-west-1.amazonaws.com"]) {
      const b = createSqsBroker({ url: endpoint, clientConfig: { credentials } });
      seen.set(endpoint, 0);
      b.on("insecure-connection", () => seen.set(endpoint, (seen.get(endpoint) ?? 0) + 1));
      opened.push(b);
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(Object.fromEntries(seen)).toEqual({
      "http://10.0.0.7:9324": 1,
      "http://127.0.0.1:9324": 0,
      "https://sqs.eu-west-1.amazonaws.com": 0,
    });
  });
});

describe("publish batching", () => {
  it("sends 10 entries per SendMessageBatch and resolves one outcome per message, in order", async () => {
    const { client, requests } = countingClient();
    const b = broker({ client });
    const q = queue("count");
    await b.publish(q, [msg("warm-up")]);
    requests.clear();
    const outcomes = await b.publish(
      q,
      Array.from({ length: 25 }, (_, i) => msg(`m-${i}`)),
    );
    expect(outcomes).toEqual(Array.from({ length: 25 }, () => ({ ok: true, duplicate: false })));
    expect(requests.get("SendMessageBatch")).toBe(3);
    await waitFor(async () => (await b.counts(q)).waiting === 26, { timeout: 5000 });
  });

  it("splits batches by bytes, refuses an oversize message alone and reports a per-entry SQS failure for that entry only", async () => {
    const { client, requests } = countingClient();
    const b = broker({ client });
    const q = queue("bytes");
    await b.publish(q, [msg("warm-up")]);
    requests.clear();
    const big = (c: string): string => c.repeat(400 * 1024);
    const messages = [
      msg(big("a")),
      msg("é".repeat(600_000)), // 1.2 MB in UTF-8 while only 600,000 characters
      msg(big("b")),
      msg("too-late", { delayMs: 1_000_000 }), // beyond DelaySeconds 900: SQS refuses this entry alone
      msg(big("c")),
      msg("small"),
    ];
    const outcomes = await b.publish(q, messages);
    expect(outcomes.map(codeOf)).toEqual([undefined, "payload-too-large", undefined, "invalid-options", undefined, undefined]);
    // 3 × 400 KiB cannot share one 1 MiB batch: at least two requests, none over the limit (SQS would refuse it whole).
    expect(requests.get("SendMessageBatch")).toBeGreaterThanOrEqual(2);
    await waitFor(async () => (await b.counts(q)).waiting === 5, { timeout: 5000, message: "expected 4 + 1 stored messages" });
  });
});

describe("queues that must already exist (queues: verify)", () => {
  it("names the missing queue in an UnknownQueueError and creates nothing", async () => {
    const { client, requests } = countingClient();
    const b = broker({ client, queues: "verify" });
    const q = queue("missing");
    const [outcome] = await b.publish(q, [msg("x")]);
    expect(codeOf(outcome)).toBe("unknown-queue");
    expect(outcome?.ok === false && outcome.error.message).toContain(sqsQueueNames(q).queue);
    await expect(b.consume(q, { prefetch: 1, leaseMs: 1000 }, () => {})).rejects.toMatchObject({ code: "unknown-queue" });
    expect(requests.get("CreateQueue")).toBeUndefined();
    await expect(client.send(new GetQueueUrlCommand({ QueueName: sqsQueueNames(q).queue }))).rejects.toMatchObject({
      name: "QueueDoesNotExist",
    });
  });

  it("uses queues created by infrastructure code", async () => {
    const { client } = countingClient();
    const q = queue("infra");
    const names = sqsQueueNames(q);
    await client.send(new CreateQueueCommand({ QueueName: names.dead }));
    await client.send(new CreateQueueCommand({ QueueName: names.queue }));
    const producer = broker({ client, queues: "verify" });
    const consumer = broker({ queues: "verify" });
    const seen = collector();
    await consumer.consume(q, { prefetch: 5, leaseMs: 5000 }, seen.onDelivery);
    expect(await producer.publish(q, [msg("made-elsewhere")])).toEqual([{ ok: true, duplicate: false }]);
    await waitFor(() => seen.deliveries.length === 1, { timeout: 5000 });
    expect(seen.deliveries[0]?.body).toBe("made-elsewhere");
  });

  it("warns once (config-warning) about an existing queue's smaller message size or early RedrivePolicy", async () => {
    const { client } = countingClient();
    const q = queue("preflight");
    const names = sqsQueueNames(q);
    const dead = await client.send(new CreateQueueCommand({ QueueName: names.dead }));
    const arn = `arn:aws:sqs:us-east-1:123456789012:${names.dead}`;
    expect(dead.QueueUrl).toBeDefined();
    await client.send(
      new CreateQueueCommand({
        QueueName: names.queue,
        Attributes: { MaximumMessageSize: "2048", RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount: 3 }) },
      }),
    );
    const b = broker({ queues: "verify" });
    const warnings: string[] = [];
    b.on("config-warning", (e) => warnings.push(e.message));
    await b.publish(q, [msg("x")]);
    await b.publish(q, [msg("y")]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain("2048 bytes");
    expect(warnings[1]).toContain("maxReceiveCount 3");
  });
});

describe("FIFO queues", () => {
  it("deduplicates enqueues by job id (never retries), refuses a per-message delay with UnsupportedError, keeps dead letters in a FIFO queue", async () => {
    const producer = broker({ fifo: true });
    const consumer = broker({ fifo: true });
    expect(producer.capabilities.dedupeWindowMs).toBe(300_000);
    const q = queue("fifo");
    const id = `job-${randomUUID()}`;
    expect(await producer.publish(q, [msg("first", { id })])).toEqual([{ ok: true, duplicate: false }]);
    expect(await producer.publish(q, [msg("second", { id })])).toEqual([{ ok: true, duplicate: true }]);
    const [delayed] = await producer.publish(q, [msg("later", { delayMs: 2000 })]);
    expect(codeOf(delayed)).toBe("unsupported");
    const seen = collector(false);
    await consumer.consume(q, { prefetch: 5, leaseMs: 5000 }, seen.onDelivery);
    await waitFor(() => seen.deliveries.length === 1, { timeout: 5000 });
    const first = seen.deliveries[0]!;
    expect(first.body).toBe("first");
    // A retry reuses the job id with dedupe off: it must be stored, not dropped as a duplicate.
    await first.retry(msg("attempt-2", { id, dedupe: false }));
    await waitFor(() => seen.deliveries.length === 2, { timeout: 5000 });
    expect(seen.deliveries[1]?.body).toBe("attempt-2");
    expect(seen.deliveries[1]?.deliveryCount).toBe(1);
    const record = {
      body: "attempt-2",
      reason: "max-attempts" as const,
      error: { name: "Error", message: "gave up" },
      failedAt: Date.now(),
    };
    await seen.deliveries[1]!.deadLetter(record);
    await waitFor(async () => JSON.stringify(await producer.counts(q)) === JSON.stringify({ waiting: 0, delayed: 0, active: 0, dead: 1 }), {
      timeout: 5000,
    });
    const [letter] = await producer.listDeadLetters(q, { limit: 10 });
    expect(letter).toMatchObject(record);
    expect(await producer.removeDeadLetters(q, [letter!.key])).toBe(1);
  });
});

describe("dead letters", () => {
  it("lists messages moved by the RedrivePolicy backstop as crash-loop dead letters", async () => {
    const producer = broker({ maxReceiveCount: 1 });
    const q = queue("redrive");
    await producer.publish(q, [msg("crashes-its-worker")]);
    const dying = broker({ maxReceiveCount: 1 });
    const seen = collector(false);
    await dying.consume(q, { prefetch: 1, leaseMs: 5000 }, seen.onDelivery);
    await waitFor(() => seen.deliveries.length === 1, { timeout: 5000 });
    // The holder goes away: visibility 0 hands the message back, and SQS moves it after 1 receive.
    await dying.close();
    const letters = await waitFor(
      async () => {
        const list = await producer.listDeadLetters(q, { limit: 10 });
        return list.length === 1 ? list : undefined;
      },
      { timeout: 5000 },
    );
    expect(letters[0]).toMatchObject({ body: "crashes-its-worker", reason: "crash-loop", error: { name: "RedrivePolicy" } });
  });
});

describe("requests", () => {
  it("an idle consumer makes one long-poll request per wait per queue", async () => {
    const { client, requests } = countingClient();
    const b = broker({ client, waitTimeSeconds: 2 });
    const q = queue("idle");
    await b.consume(q, { prefetch: 10, leaseMs: 30_000 }, () => {});
    const receives = (): number => requests.get("ReceiveMessage") ?? 0;
    const before = new Map(requests);
    const startedAt = performance.now();
    const start = receives();
    await waitFor(() => receives() >= start + 3, { timeout: 15_000 });
    // 3 more polls took at least 2 waits of 2 s: at most 30 requests per minute here, 3 with the default 20 s wait.
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(2 * 2000 - 50);
    const others = [...requests].filter(([op, n]) => op !== "ReceiveMessage" && n !== before.get(op));
    expect(others).toEqual([]);
  }, 20_000);

  it("moves jobs in batches: at most 0.4 requests per job to publish, receive and delete 100 messages", async () => {
    const { client, total, requests } = countingClient();
    const b = broker({ client });
    const q = queue("perjob");
    await b.publish(q, [msg("warm-up")]);
    const n = 100;
    const seen = collector(false);
    await b.purge(q);
    requests.clear();
    await b.publish(
      q,
      Array.from({ length: n }, (_, i) => msg(`job-${i}`)),
    );
    await b.consume(q, { prefetch: 50, leaseMs: 30_000 }, (d) => {
      seen.onDelivery(d);
      void d.ack().catch(() => {});
    });
    await waitFor(() => seen.deliveries.length >= n, { timeout: 15_000 });
    await waitFor(async () => (await b.counts(q)).active === 0, { timeout: 5000 });
    const work = total() - (requests.get("GetQueueAttributes") ?? 0) - (requests.get("GetQueueUrl") ?? 0);
    expect(work / n).toBeLessThanOrEqual(0.4);
  });
});

describe("hand-back on close", () => {
  // A long poll the client gave up on is still served (by SQS and by the emulator): it takes the
  // messages a close hands back, and nobody reads its answer. They then stay hidden for the whole
  // visibility timeout (the 60 s lease here) unless close() reads what its receives in flight took.
  it("a message deferred with 0 and one still held at close() reach another consumer at once, though a receive was in flight", async () => {
    const q = queue("handback");
    const first = broker();
    const held = collector(false);
    await first.consume(q, { prefetch: 10, leaseMs: 60_000 }, held.onDelivery);
    await broker().publish(q, [msg("deferred"), msg("held")]);
    await waitFor(() => held.deliveries.length === 2, { timeout: 5000 });
    // Both arrived in one answer, and the next receive went out at once: it is in flight now.
    const deferred = held.deliveries.find((d) => d.body === "deferred") as Delivery;
    await deferred.defer(0);
    await first.close();
    const second = collector();
    await broker().consume(q, { prefetch: 10, leaseMs: 60_000 }, second.onDelivery);
    // Far below the 60 s lease: a message taken by the abandoned receive would miss it.
    await waitFor(() => second.deliveries.length === 2, { timeout: 5000, message: "expected both messages back within 5 s" });
    expect(second.deliveries.map((d) => d.body).sort()).toEqual(["deferred", "held"]);
  });
});

describe("hand-back of the first poll", () => {
  // consume() starts with a short poll (no wait). A close() that begins while it is out must read
  // its answer and hand back what it took: a message it took and nobody delivered would stay
  // hidden for the whole visibility timeout (the 60 s lease here).
  it("messages the first poll took while close() began reach another consumer at once, and never the closed one", async () => {
    const q = queue("firstpoll");
    await broker().publish(q, [msg("one"), msg("two")]);
    const { client } = countingClient();
    let closing: Promise<void> | undefined;
    let first: Broker | undefined;
    // The first ReceiveMessage answered; close() begins before consume() reads that answer.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        const input = (args as { input?: { WaitTimeSeconds?: number } }).input;
        if (context.commandName === "ReceiveMessageCommand" && input?.WaitTimeSeconds === 0 && closing === undefined) {
          closing = (first as Broker).close();
        }
        return out;
      },
      { step: "initialize", name: "jobsCloseDuringFirstPoll" },
    );
    try {
      first = broker({ client });
      const closed = collector(false);
      await first.consume(q, { prefetch: 10, leaseMs: 60_000 }, closed.onDelivery);
      expect(closing, "the first poll did not go out").toBeDefined();
      await closing;
      const second = collector();
      await broker().consume(q, { prefetch: 10, leaseMs: 60_000 }, second.onDelivery);
      // Far below the 60 s lease: a message stranded by the first poll would miss it.
      await waitFor(() => second.deliveries.length === 2, { timeout: 5000, message: "expected both messages back within 5 s" });
      expect(second.deliveries.map((d) => d.body).sort()).toEqual(["one", "two"]);
      expect(closed.deliveries).toEqual([]);
    } finally {
      client.destroy();
    }
  });
});

describe("failures", () => {
  it("a request to a stalled endpoint fails after requestTimeout: the publish outcome is unknown, and later calls work", async () => {
    const proxy = await createFaultProxy({ target: endpoint });
    try {
      const b = broker({ url: `http://${proxy.address.host}:${proxy.address.port}`, requestTimeout: "1s" });
      const q = queue("stall");
      await b.publish(q, [msg("before")]);
      proxy.pause();
      const startedAt = performance.now();
      const [outcome] = await b.publish(q, [msg("stalled")]);
      const elapsed = performance.now() - startedAt;
      expect(codeOf(outcome)).toBe("enqueue-outcome-unknown");
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(elapsed).toBeLessThan(3000);
      proxy.resume();
      proxy.resetConnections();
      expect(await b.publish(q, [msg("after")])).toEqual([{ ok: true, duplicate: false }]);
    } finally {
      await proxy.close();
    }
  });

  it("a consumer survives an endpoint outage: disconnected, then reconnected, and it receives again", async () => {
    const proxy = await createFaultProxy({ target: endpoint });
    try {
      const consumer = broker({ url: `http://${proxy.address.host}:${proxy.address.port}`, requestTimeout: "1s" });
      const producer = broker();
      const events: string[] = [];
      consumer.on("disconnected", () => events.push("disconnected"));
      consumer.on("reconnected", () => events.push("reconnected"));
      const q = queue("outage");
      const seen = collector();
      await consumer.consume(q, { prefetch: 5, leaseMs: 5000 }, seen.onDelivery);
      await producer.publish(q, [msg("before")]);
      await waitFor(() => seen.deliveries.length === 1, { timeout: 5000 });
      // Every connection is refused with a reset until the mode changes back.
      proxy.setMode("reset");
      await waitFor(() => events.includes("disconnected"), { timeout: 10_000 });
      await producer.publish(q, [msg("during")]);
      proxy.setMode("pass");
      await waitFor(() => events.includes("reconnected"), { timeout: 15_000 });
      await producer.publish(q, [msg("after")]);
      // "before" may come twice: its ack can be cut by the outage (at least once).
      const bodies = (): string[] => [...new Set(seen.deliveries.map((d) => d.body))].sort();
      await waitFor(() => bodies().length === 3, { timeout: 15_000 });
      expect(bodies()).toEqual(["after", "before", "during"]);
      expect(events).toEqual(["disconnected", "reconnected"]);
    } finally {
      await proxy.close();
    }
  }, 40_000);

  it("never puts credentials in errors or events", async () => {
    const secret = credentials.secretAccessKey;
    const down = `http://127.0.0.1:${await freePort()}`;
    const seen: unknown[] = [];
    for (const b of [broker({ url: down, requestTimeout: "1s" }), broker({ queues: "verify" })]) {
      b.on("disconnected", (e) => seen.push(e));
      b.on("error", (e) => seen.push(e));
      const [outcome] = await b.publish(queue("creds"), [msg("x")]);
      expect(outcome?.ok).toBe(false);
      seen.push(outcome);
      seen.push(await b.counts("").catch((e: unknown) => e));
      seen.push(await b.consume(queue("creds"), { prefetch: 1, leaseMs: 1000 }, () => {}).catch((e: unknown) => e));
    }
    expect(seen.some((e) => JobsError.isInstance(e) || (e as PublishOutcome).ok === false)).toBe(true);
    const text = seen.map((e) => inspect(e, { depth: 10, showHidden: true })).join("\n");
    expect(text).not.toContain(secret);
    expect(text).not.toContain(credentials.accessKeyId);
  });
});
