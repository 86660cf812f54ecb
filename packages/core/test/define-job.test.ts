import { type } from "arktype";
import * as v from "valibot";
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { defineJob, JOB_DEFAULTS, type JobOptions } from "../src/define-job.js";
import { InvalidOptionsError } from "../src/errors.js";
import { assertJobId, assertJobName, assertQueueName } from "../src/names.js";
import { PRIORITIES, priorityLevel } from "../src/priority.js";

afterEach(() => {
  vi.restoreAllMocks();
});

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as InvalidOptionsError).code).toBe("invalid-options");
    return (error as InvalidOptionsError).field;
  }
  throw new Error("expected an InvalidOptionsError, nothing was thrown");
}

const define = (options: Record<string, unknown>) => defineJob(options as unknown as JobOptions);

describe("defineJob defaults", () => {
  it("applies 25 attempts, 30 minutes, normal priority, queue 'default'", () => {
    const job = defineJob({ name: "email.send" });
    expect(job.name).toBe("email.send");
    expect(job.queue).toBe("default");
    expect(job.maxAttempts).toBe(25);
    expect(job.timeoutMs).toBe(30 * 60 * 1000);
    expect(job.priority).toBe("normal");
    expect(job.schema).toBeUndefined();
    expect(JOB_DEFAULTS).toEqual({ queue: "default", maxAttempts: 25, timeoutMs: 1_800_000, priority: "normal" });
  });

  it("uses jittered exponential backoff from 1 s by default", () => {
    const job = defineJob({ name: "a" });
    vi.spyOn(Math, "random").mockReturnValue(0);
    expect(job.backoff(1, undefined)).toBe(500);
    expect(job.backoff(2, undefined)).toBe(1_000);
    vi.spyOn(Math, "random").mockReturnValue(0.999999);
    expect(job.backoff(1, undefined)).toBeLessThan(1_000);
    expect(job.backoff(1, undefined)).toBeGreaterThan(999);
  });

  it("keeps explicit options, parsing durations once", () => {
    const schema = z.object({ to: z.string() });
    const job = defineJob({
      name: "report.build",
      queue: "reports",
      schema,
      maxAttempts: 3,
      timeout: "2m 30s",
      priority: "high",
      backoff: { type: "fixed", delay: "5s" },
    });
    expect(job).toMatchObject({ name: "report.build", queue: "reports", maxAttempts: 3, timeoutMs: 150_000, priority: "high" });
    expect(job.schema).toBe(schema);
    expect(job.backoff(7, undefined)).toBe(5_000);
  });

  it("accepts any Standard Schema, including callable ones (arktype)", () => {
    const ark = type({ to: "string" });
    expect(typeof ark).toBe("function");
    for (const schema of [z.object({ to: z.string() }), v.object({ to: v.string() }), ark]) {
      expect(defineJob({ name: "s", schema }).schema).toBe(schema);
    }
  });

  it("rounds a fractional timeout up to whole milliseconds", () => {
    expect(defineJob({ name: "a", timeout: 1.2 }).timeoutMs).toBe(2);
  });

  it("returns a frozen definition", () => {
    const job = defineJob({ name: "frozen" });
    expect(Object.isFrozen(job)).toBe(true);
    expect(() => {
      (job as { maxAttempts: number }).maxAttempts = 1;
    }).toThrow(TypeError);
  });
});

describe("job names", () => {
  it.each([["a"], ["email.send"], ["Billing:Invoice-Paid_v2"], ["constructor"], ["toString"], ["x".repeat(128)]])("accepts %j", (name) => {
    expect(defineJob({ name }).name).toBe(name);
  });

  it.each([
    [""],
    ["1job"],
    ["_private"],
    ["__proto__"],
    ["-dash"],
    ["has space"],
    ["a/b"],
    ["a*"],
    ["a{b}"],
    ["é"],
    ["x".repeat(129)],
    [42],
    [undefined],
  ])("rejects %j naming the field 'name'", (name) => {
    expect(fieldOf(() => define({ name }))).toBe("name");
  });

  it("assertJobName uses the field it is given and quotes the bad name", () => {
    try {
      assertJobName("bad name", "jobs[3].name");
      expect.unreachable();
    } catch (error) {
      expect((error as InvalidOptionsError).field).toBe("jobs[3].name");
      expect((error as Error).message).toContain('"bad name"');
    }
  });
});

describe("queue names", () => {
  it.each([["default"], ["q"], ["0"], ["emails-high_1"], ["a_b-c"], ["q".repeat(63)]])("accepts %j", (queue) => {
    expect(defineJob({ name: "a", queue }).queue).toBe(queue);
  });

  it.each([[""], ["a__b"], ["a__p4"], ["q".repeat(64)], ["a.b"], ["a b"], ["{a}"], ["a*"], ["a>"], ["a:b"], ["a/b"], ["_a"], ["-a"], [7]])(
    "rejects %j naming the field 'queue'",
    (queue) => {
      expect(fieldOf(() => define({ name: "a", queue }))).toBe("queue");
    },
  );

  it("assertQueueName takes a field", () => {
    expect(fieldOf(() => assertQueueName("x.y", "queues[1]"))).toBe("queues[1]");
    expect(() => assertQueueName("ok-queue")).not.toThrow();
  });
});

describe("job ids", () => {
  it("accepts letters, digits and _ . : - up to 128 characters", () => {
    expect(() => assertJobId("order:42.v1_a-b")).not.toThrow();
    expect(() => assertJobId("9")).not.toThrow();
    expect(() => assertJobId("i".repeat(128))).not.toThrow();
  });

  it.each([[""], ["i".repeat(129)], ["-x"], ["a b"], ["a/b"], [12]])("rejects %j", (id) => {
    expect(fieldOf(() => assertJobId(id))).toBe("id");
  });
});

describe("invalid definitions", () => {
  it.each([
    [{ maxAttempts: 0 }, "maxAttempts"],
    [{ maxAttempts: -1 }, "maxAttempts"],
    [{ maxAttempts: 1.5 }, "maxAttempts"],
    [{ maxAttempts: 1001 }, "maxAttempts"],
    [{ maxAttempts: "3" }, "maxAttempts"],
    [{ maxAttempts: Number.NaN }, "maxAttempts"],
    [{ timeout: 0 }, "timeout"],
    [{ timeout: 0.5 }, "timeout"],
    [{ timeout: -1 }, "timeout"],
    [{ timeout: "soon" }, "timeout"],
    [{ timeout: "25d" }, "timeout"],
    [{ timeout: Number.POSITIVE_INFINITY }, "timeout"],
    [{ priority: "urgent" }, "priority"],
    [{ priority: 3 }, "priority"],
    [{ schema: {} }, "schema"],
    [{ schema: "string" }, "schema"],
    [{ schema: null }, "schema"],
    [{ schema: () => true }, "schema"],
    [{ schema: { "~standard": undefined, parse: () => 1 } }, "schema"],
    [{ backoff: "exponential" }, "backoff"],
    [{ backoff: { type: "fixed", delay: "never" } }, "backoff.delay"],
    [{ backoff: { type: "random" } }, "backoff.type"],
  ])("%j is rejected naming %s", (extra, field) => {
    expect(fieldOf(() => define({ name: "a", ...extra }))).toBe(field);
  });

  it("accepts the bounds of maxAttempts and timeout", () => {
    expect(defineJob({ name: "a", maxAttempts: 1 }).maxAttempts).toBe(1);
    expect(defineJob({ name: "a", maxAttempts: 1000 }).maxAttempts).toBe(1000);
    expect(defineJob({ name: "a", timeout: 1 }).timeoutMs).toBe(1);
    expect(defineJob({ name: "a", timeout: "24d" }).timeoutMs).toBe(24 * 86_400_000);
    expect(defineJob({ name: "a", timeout: 2_147_483_647 }).timeoutMs).toBe(2_147_483_647);
  });

  it("rejects a missing options object", () => {
    expect(fieldOf(() => defineJob(undefined as unknown as JobOptions))).toBe("options");
    expect(fieldOf(() => defineJob(null as unknown as JobOptions))).toBe("options");
  });
});

describe("priorities", () => {
  it("are ordered lowest first and map to levels 0..4", () => {
    expect(PRIORITIES).toEqual(["trivial", "low", "normal", "high", "critical"]);
    expect(PRIORITIES.map((p) => priorityLevel(p))).toEqual([0, 1, 2, 3, 4]);
  });

  it("reject unknown names naming the field", () => {
    expect(fieldOf(() => priorityLevel("urgent" as "high", "options.priority"))).toBe("options.priority");
  });
});
