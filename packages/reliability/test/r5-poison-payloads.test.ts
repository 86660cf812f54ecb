/**
 * R5 — poison payloads (RELIABILITY.md d.3), in the test process on every adapter. Receive side:
 * hostile bytes written with the broker's own client in the adapter's layout (`src/raw.ts`),
 * interleaved with good jobs; each must be dead-lettered once, with its reason, after one delivery,
 * and crash or pollute nothing. Producer side: `enqueue` rejects with a typed error and sends
 * nothing. The same run also yields T2's receive half (hostile job names) and T3 (schema on both
 * ends), reported as their own rows.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { type Client, createAdmin, createClient, createWorker, defineJob, JobsError, type QueueCounts, type Worker } from "@jobs/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBroker, selectedAdapters, startTarget, type Target } from "../src/adapters.js";
import { config, TIMINGS } from "../src/config.js";
import { type EventLine, longestLine, observe, prototypeSnapshot, prototypeUnchanged, recordEvents, until } from "../src/observe.js";
import { rawWriter } from "../src/raw.js";
import { type Bar, bar, writeReport } from "../src/report.js";

const QUEUE = "r5";
const MB = 1024 * 1024;

/** A Standard Schema (hand-written, no library): `{ n: number }`. */
const numberSchema = {
  "~standard": {
    version: 1 as const,
    vendor: "reliability",
    validate: (value: unknown) =>
      typeof value === "object" && value !== null && typeof (value as { n?: unknown }).n === "number"
        ? { value: value as { n: number } }
        : { issues: [{ message: "n must be a number", path: ["n"] }] },
  },
};
/** A schema whose validation itself throws (unbounded recursion: stack overflow), P9. */
const recurse = (v: unknown): unknown => recurse([v]);
const recursiveSchema = {
  "~standard": { version: 1 as const, vendor: "reliability", validate: (value: unknown) => ({ value: recurse(value) as object }) },
};

interface Case {
  readonly id: string;
  readonly group: string;
  readonly body: string | Buffer;
  /** Which delivered bodies are this message (default: equal to the body as UTF-8). */
  readonly matches?: (body: string) => boolean;
  /** Expected: dead-lettered with this reason and an error matching `error`, or refused by the broker's raw publish. */
  readonly expect: { readonly reason: string; readonly error: RegExp } | { readonly refused: RegExp } | { readonly completes: true };
}

function envelope(marker: string, fields: Record<string, unknown>, payloadJson?: string): string {
  const now = Date.now();
  const base: Record<string, unknown> = {
    v: 1,
    id: randomUUID(),
    name: "r5.good",
    queue: QUEUE,
    attempt: 1,
    maxAttempts: 3,
    priority: "normal",
    enqueuedAt: now,
    runAt: now,
    timeout: 10_000,
    ...fields,
  };
  for (const [k, v] of Object.entries(base)) if (v === undefined) delete base[k];
  const text = JSON.stringify(base);
  return `${text.slice(0, -1)},"payload":${payloadJson ?? JSON.stringify({ i: -1, m: marker })}}`;
}

function poisonCases(adapter: string, marker: string, maxPayloadBytes: number): Case[] {
  const undecodable = (error: RegExp) => ({ reason: "undecodable", error });
  const p8Keys = Math.floor((maxPayloadBytes - 4096) / 12);
  const p8Payload = `{"i":-8,"m":"${marker}",${Array.from({ length: p8Keys }, (_, k) => `"k${k.toString(36)}":0`).join(",")}}`;
  const tenMb = envelope(marker, {}, JSON.stringify({ i: -5, m: marker, s: "a".repeat(10 * MB) }));
  return [
    { id: "P1-invalid-json", group: "P1", body: '{"id":', expect: undecodable(/JSON/) },
    {
      id: "P1-non-utf8",
      group: "P1",
      body: Buffer.from([0xff, 0xfe, 0xfd, 0x80, 0x81, 0xc3]),
      matches: (b) => b.length > 0 && b.length <= 12 && /^\uFFFD+$/.test(b),
      expect: undecodable(/JSON/),
    },
    // SQS refuses an empty body (MessageBody must be 1+ characters): nothing to receive there.
    { id: "P1-empty", group: "P1", body: "", expect: adapter === "sqs" ? { refused: /^MissingParameter/ } : undecodable(/JSON/) },
    { id: "P2-array", group: "P2", body: "[]", expect: undecodable(/not a JSON object/) },
    { id: "P2-string", group: "P2", body: '"s"', expect: undecodable(/not a JSON object/) },
    { id: "P2-null", group: "P2", body: "null", expect: undecodable(/not a JSON object/) },
    { id: "P2-version-2", group: "P2", body: envelope(marker, { v: 2 }), expect: undecodable(/unsupported version/) },
    { id: "P2-missing-id", group: "P2", body: envelope(marker, { id: undefined }), expect: undecodable(/bad id/) },
    { id: "P2-missing-name", group: "P2", body: envelope(marker, { name: undefined }), expect: undecodable(/bad name/) },
    { id: "P2-attempt-minus-1", group: "P2", body: envelope(marker, { attempt: -1 }), expect: undecodable(/bad attempt/) },
    {
      id: "P2-attempt-1e309",
      group: "P2",
      body: envelope(marker, { attempt: 424242 }).replace('"attempt":424242', '"attempt":1e309'),
      expect: undecodable(/bad attempt/),
    },
    {
      id: "P3-unknown",
      group: "P3",
      body: envelope(marker, { name: "r5.nosuch" }),
      expect: { reason: "unknown-job", error: /no handler/ },
    },
    // Job names are checked against the name pattern on receipt (S2): "__proto__" is not a name at all.
    { id: "P3-__proto__", group: "P3", body: envelope(marker, { name: "__proto__" }), expect: undecodable(/bad name/) },
    ...["constructor", "toString", "hasOwnProperty"].map((name) => ({
      id: `P3-${name}`,
      group: "P3",
      body: envelope(marker, { name }),
      expect: { reason: "unknown-job", error: /no handler/ },
    })),
    {
      id: "P4-schema",
      group: "P4",
      body: envelope(marker, { name: "r5.strict" }, `{"n":"x","m":"${marker}"}`),
      expect: { reason: "validation", error: /invalid/ },
    },
    {
      id: "P5-10MB",
      group: "P5",
      body: tenMb,
      // NATS (max_payload 1 MB) and SQS (1 MiB) refuse the raw publish; the others store it.
      expect:
        adapter === "nats"
          ? { refused: /^InvalidArgumentError: .*max_payload/ }
          : adapter === "sqs"
            ? { refused: /^InvalidParameterValue: .*shorter than 1048576 bytes/ }
            : undecodable(/over the limit/),
    },
    ...[
      ["P6-proto-top", `{"__proto__":{"polluted":1},"m":"${marker}"}`],
      ["P6-proto-nested", `{"a":{"b":{"__proto__":{"polluted":1}}},"m":"${marker}"}`],
      ["P6-constructor-top", `{"constructor":{"prototype":{"x":1}},"m":"${marker}"}`],
      ["P6-constructor-nested", `{"a":[{"constructor":{"prototype":{"x":1}}}],"m":"${marker}"}`],
      ["P6-escaped-proto", `{"\\u005f_proto__":{"polluted":1},"m":"${marker}"}`],
    ].map(([id, payload]) => ({
      id: id as string,
      group: "P6",
      body: envelope(marker, {}, payload),
      expect: undecodable(/forbidden key/),
    })),
    {
      id: "P6-envelope-proto",
      group: "P6",
      body: envelope(marker, {}).replace('{"v":1', '{"__proto__":{"polluted":1},"v":1'),
      expect: undecodable(/forbidden key/),
    },
    {
      id: "P7-deep-100000",
      group: "P7",
      body: envelope(marker, {}, `${"[".repeat(100_000)}${"]".repeat(100_000)}`),
      expect: undecodable(/nested deeper/),
    },
    { id: "P8-many-keys", group: "P8", body: envelope(marker, {}, p8Payload), expect: { completes: true } },
    {
      id: "P9-schema-throws",
      group: "P9",
      body: envelope(marker, { name: "r5.recursive" }, `{"m":"${marker}"}`),
      expect: { reason: "validation", error: /schema threw/ },
    },
  ];
}

const total = (c: QueueCounts): number => c.waiting + c.delayed + c.active + c.dead;

for (const adapter of selectedAdapters()) {
  describe(`R5 poison payloads on ${adapter}`, () => {
    let target: Target;
    beforeAll(async () => {
      target = await startTarget(adapter, "r5");
    });
    afterAll(async () => {
      await target?.stop();
    });

    it(`R5 P1-P9, producer and receive side, beside good jobs (${adapter})`, async () => {
      const goodJobs = config().inProcess.r5GoodJobs;
      const marker = `r5-payload-${randomBytes(6).toString("hex")}`;
      const prototypeBefore = prototypeSnapshot();
      const good = defineJob<{ i: number; m: string }>({ name: "r5.good", queue: QUEUE, maxAttempts: 3, timeout: 10_000 });
      const strict = defineJob({ name: "r5.strict", queue: QUEUE, schema: numberSchema, maxAttempts: 3 });
      const recursive = defineJob({ name: "r5.recursive", queue: QUEUE, schema: recursiveSchema, maxAttempts: 3 });
      const { broker: clientBroker, seen: sent } = observe(createBroker(target.spec));
      const { broker: workerBroker, seen } = observe(createBroker(target.spec));
      const client = createClient({ broker: clientBroker });
      const worker = createWorker({ broker: workerBroker, concurrency: 8, lease: TIMINGS.leaseMs });
      const admin = createAdmin({ broker: workerBroker });
      const goodDone = new Set<number>();
      const schemaHandlerCalls = { strict: 0, recursive: 0 };
      let p8Started = 0;
      worker.handle(good, (p) => {
        if (p.i === -8) p8Started++;
        else goodDone.add(p.i);
      });
      worker.handle(strict, () => {
        schemaHandlerCalls.strict++;
      });
      worker.handle(recursive, () => {
        schemaHandlerCalls.recursive++;
      });
      const events = recordEvents({ worker: worker as Worker<unknown>, client: client as Client, broker: workerBroker });
      await worker.start();

      // ---- producer side: typed rejections, nothing sent -------------------------------------
      const producer: Record<string, { error: string; typed: boolean; message: string }> = {};
      const countsBefore = total(await admin.counts(QUEUE));
      const publishedBefore = sent.published;
      const reject = async (id: string, fn: () => unknown, want: { code: string; message?: RegExp }): Promise<void> => {
        try {
          await fn();
          producer[id] = { error: "none (accepted)", typed: false, message: "" };
        } catch (error) {
          const e = error as Error;
          const typed = JobsError.isInstance(error) && error.code === want.code && (want.message?.test(e.message) ?? true);
          producer[id] = { error: `${e.name}/${(error as JobsError).code ?? ""}`, typed, message: e.message.slice(0, 160) };
        }
      };
      const deep = (): unknown => {
        let v: unknown = [];
        for (let i = 0; i < 100_000; i++) v = [v];
        return v;
      };
      await reject("P3-__proto__", () => defineJob({ name: "__proto__", queue: QUEUE }), { code: "invalid-options" });
      await reject("P4-schema", () => client.enqueue(strict, { n: "x" } as unknown as { n: number }), { code: "job-validation" });
      await reject("P5-10MB", () => client.enqueue(good, { i: -5, m: "a".repeat(10 * MB) }), { code: "payload-too-large" });
      for (const [id, json] of [
        ["P6-proto-top", '{"__proto__":{"polluted":1}}'],
        ["P6-proto-nested", '{"a":{"__proto__":{"polluted":1}}}'],
        ["P6-constructor-top", '{"constructor":{"prototype":{"x":1}}}'],
        ["P6-constructor-nested", '{"a":[{"constructor":{"prototype":{"x":1}}}]}'],
      ] as const) {
        await reject(id, () => client.enqueue(good, JSON.parse(json) as { i: number; m: string }), {
          code: "job-validation",
          message: /not allowed/,
        });
      }
      await reject("P7-deep-100000", () => client.enqueue(good, deep() as { i: number; m: string }), {
        code: "job-validation",
        message: /nested deeper/,
      });
      await reject("P9-schema-throws", () => client.enqueue(recursive, {}), { code: "job-validation", message: /schema threw/ });
      const countsAfter = total(await admin.counts(QUEUE));
      const publishedAfter = sent.published;

      // ---- receive side: raw poison interleaved with good jobs -------------------------------
      const maxPayloadBytes = workerBroker.capabilities.maxPayloadBytes;
      const cases = poisonCases(adapter, marker, maxPayloadBytes);
      const raw = await rawWriter(target.spec, workerBroker.capabilities);
      const sentAt = new Map<string, number>();
      const refusals = new Map<string, string>();
      const perPoison = Math.ceil(goodJobs / cases.length);
      let nextGood = 0;
      for (const c of cases) {
        const batch = Math.min(perPoison, goodJobs - nextGood);
        if (batch > 0) {
          await client.enqueueMany(Array.from({ length: batch }, (_, k) => ({ job: good, payload: { i: nextGood + k, m: marker } })));
          nextGood += batch;
        }
        sentAt.set(c.id, Date.now());
        try {
          await raw.send(QUEUE, c.body);
        } catch (error) {
          refusals.set(c.id, `${(error as Error).name}: ${String((error as Error).message).slice(0, 160)}`);
        }
      }
      if (nextGood < goodJobs) {
        await client.enqueueMany(
          Array.from({ length: goodJobs - nextGood }, (_, k) => ({ job: good, payload: { i: nextGood + k, m: marker } })),
        );
      }
      await raw.close();
      const bodyOf = (c: Case): string => (typeof c.body === "string" ? c.body : c.body.toString("utf8"));
      const deliveriesOf = (c: Case) => seen.deliveries.filter((d) => (c.matches ?? ((b: string) => b === bodyOf(c)))(d.body));
      const expectedDead = cases.filter((c) => "reason" in c.expect && !refusals.has(c.id));
      await until(
        () =>
          goodDone.size === goodJobs &&
          p8Started >= 1 &&
          expectedDead.every((c) => deliveriesOf(c).some((d) => d.settled === "dead")) &&
          seen.deliveries.every((d) => d.settled !== undefined),
        120_000,
        "every poison message dead-lettered and every good job done",
      );
      const queueCounts = await admin.counts(QUEUE);
      events.stop();
      await worker.close({ timeout: "2s" });
      await clientBroker.close();
      await workerBroker.close();

      // ---- verdicts ---------------------------------------------------------------------------
      const allBars: Bar[] = [];
      const groups = new Map<string, { figures: Record<string, unknown>; bars: Bar[] }>();
      const group = (g: string) => {
        let entry = groups.get(g);
        if (entry === undefined) {
          entry = { figures: {}, bars: [] };
          groups.set(g, entry);
        }
        return entry;
      };
      for (const c of cases) {
        const g = group(c.group);
        const ds = deliveriesOf(c);
        const dead = ds.filter((d) => d.settled === "dead");
        const record = dead[0]?.record;
        const refusal = refusals.get(c.id);
        // Only P8 runs a handler; its decode time is delivery to start.
        const started =
          "completes" in c.expect
            ? events.lines.filter((l) => l.event === "job.started" && ds.some((d) => d.body.includes((l.data.job as { id: string }).id)))
            : [];
        g.figures[c.id] = {
          bytes: Buffer.byteLength(bodyOf(c)),
          deliveries: ds.length,
          deliveryCounts: ds.map((d) => d.deliveryCount),
          settled: ds.map((d) => d.settled),
          reason: record?.reason,
          error: record === undefined ? undefined : `${record.error.name}: ${record.error.message.slice(0, 140)}`,
          dlqBodyBytes: record === undefined ? undefined : Buffer.byteLength(record.body),
          timeToDlqMs: dead[0]?.settledAt === undefined ? undefined : dead[0].settledAt - (sentAt.get(c.id) ?? 0),
          decodeToStartMs: started[0] === undefined || ds[0] === undefined ? undefined : started[0].at - ds[0].at,
          refusedBy: refusal,
          producer: producer[c.id],
        };
        const e = c.expect;
        if ("refused" in e) {
          g.bars.push(
            bar(`${c.id} raw publish refused by the broker`, refusal ?? "accepted", String(e.refused), e.refused.test(refusal ?? "")),
          );
          g.bars.push(bar(`${c.id} deliveries`, ds.length, "= 0", ds.length === 0));
        } else if ("completes" in e) {
          g.bars.push(
            bar(
              `${c.id} completed once`,
              `${ds.length} deliveries, ${ds.map((d) => d.settled).join(",")}`,
              "1 delivery, ack",
              ds.length === 1 && ds[0]?.settled === "ack" && p8Started === 1,
            ),
          );
        } else {
          g.bars.push(bar(`${c.id} deliveries`, ds.length, "= 1 (never redelivered)", ds.length === 1 && ds[0]?.deliveryCount === 1));
          g.bars.push(bar(`${c.id} dead-lettered once`, dead.length, "= 1", dead.length === 1 && ds.every((d) => d.settled === "dead")));
          g.bars.push(
            bar(
              `${c.id} reason`,
              `${record?.reason}: ${record?.error.message.slice(0, 80)}`,
              `${e.reason}, ${e.error}`,
              record?.reason === e.reason && e.error.test(record?.error.message ?? ""),
            ),
          );
          if (e.reason === "undecodable") {
            const keptBytes = record === undefined ? -1 : Buffer.byteLength(record.body);
            const rawKept = record !== undefined && (record.body === ds[0]?.body || keptBytes <= maxPayloadBytes);
            g.bars.push(
              bar(
                `${c.id} dlq keeps raw bytes, bounded`,
                keptBytes,
                `raw body, <= ${maxPayloadBytes} B`,
                rawKept && keptBytes <= maxPayloadBytes,
              ),
            );
          }
        }
        if (producer[c.id] !== undefined) {
          const p = producer[c.id] as { error: string; typed: boolean };
          g.bars.push(bar(`${c.id} on enqueue`, p.error, "typed rejection", p.typed));
        }
      }
      const lines: EventLine[] = events.lines;
      const longest = longestLine(lines);
      const withPayload = lines.filter((l) => l.line.includes(marker)).length;
      const polluted = !prototypeUnchanged(prototypeBefore);
      const expectedDeadCount = expectedDead.length;
      const leaseLost = lines.filter((l) => l.event === "job.lease-lost").length;
      const overall: Bar[] = [
        bar("lease-lost events (P8 decode keeps the lease)", leaseLost, "= 0", leaseLost === 0),
        bar("good jobs completed", goodDone.size, `= ${goodJobs}`, goodDone.size === goodJobs),
        bar("Object.prototype unchanged", !polluted, "true", !polluted),
        bar("longest event line", longest, "<= 2048 B", longest <= 2048),
        bar("event lines with a payload", withPayload, "= 0", withPayload === 0),
        bar("producer-side: messages published", publishedAfter - publishedBefore, "= 0", publishedAfter === publishedBefore),
        bar("producer-side: broker counts unchanged", `${countsBefore} -> ${countsAfter}`, "equal", countsBefore === countsAfter),
        bar(
          "queue drained",
          queueCounts.waiting + queueCounts.delayed + queueCounts.active,
          "= 0",
          queueCounts.waiting + queueCounts.delayed + queueCounts.active === 0,
        ),
        bar("dead letters in the broker", queueCounts.dead, `= ${expectedDeadCount}`, queueCounts.dead === expectedDeadCount),
        bar(
          "schema handlers called",
          schemaHandlerCalls.strict + schemaHandlerCalls.recursive,
          "= 0",
          schemaHandlerCalls.strict + schemaHandlerCalls.recursive === 0,
        ),
      ];
      const deadByReason: Record<string, number> = {};
      for (const d of seen.deliveries) if (d.record !== undefined) deadByReason[d.record.reason] = (deadByReason[d.record.reason] ?? 0) + 1;
      for (const [g, { figures, bars }] of groups) {
        const r = writeReport({ test: `R5-${g}`, adapter, seed: 0, figures, bars });
        allBars.push(...r.bars);
      }
      const main = writeReport({
        test: "R5",
        adapter,
        seed: 0,
        config: { goodJobs, maxPayloadBytes, tier: config().tier },
        figures: {
          goodJobs,
          goodCompleted: goodDone.size,
          // 1,000,000 distinct keys cannot fit the 1 MiB limits: P8 uses as many as fit the worker's limit.
          p8Keys: Math.floor((maxPayloadBytes - 4096) / 12),
          deadByReason,
          eventLines: lines.length,
          eventBytes: lines.reduce((s, l) => s + Buffer.byteLength(l.line), 0),
          longestEventLine: longest,
          workerPid: process.pid,
          queueCounts,
        },
        bars: overall,
      });
      allBars.push(...main.bars);
      // T2, receive half: hostile job names end as unknown (or invalid) names, never as a lookup on a prototype.
      const t2Cases = cases.filter((c) => c.group === "P3");
      const t2 = writeReport({
        test: "T2-receive",
        adapter,
        seed: 0,
        figures: Object.fromEntries(t2Cases.map((c) => [c.id, groups.get("P3")?.figures[c.id]])),
        bars: [...(groups.get("P3")?.bars ?? []), bar("Object.prototype unchanged", !polluted, "true", !polluted)],
      });
      allBars.push(...t2.bars);
      // T3: schema on both ends (P4 and P9 from both sides).
      const t3 = writeReport({
        test: "T3",
        adapter,
        seed: 0,
        figures: { schemaHandlerCalls, producer: { P4: producer["P4-schema"], P9: producer["P9-schema-throws"] } },
        bars: [
          bar(
            "handler calls for schema-violating raw messages",
            schemaHandlerCalls.strict + schemaHandlerCalls.recursive,
            "= 0",
            schemaHandlerCalls.strict + schemaHandlerCalls.recursive === 0,
          ),
          bar(
            "producer-side failures typed",
            `${producer["P4-schema"]?.typed}/${producer["P9-schema-throws"]?.typed}`,
            "true/true",
            producer["P4-schema"]?.typed === true && producer["P9-schema-throws"]?.typed === true,
          ),
          bar(
            "producer-side: broker counts unchanged",
            `${countsBefore} -> ${countsAfter}`,
            "equal",
            countsBefore === countsAfter && publishedAfter === publishedBefore,
          ),
        ],
      });
      allBars.push(...t3.bars);
      expect(allBars.filter((b) => !b.ok)).toEqual([]);
    });
  });
}
