import { describe, expect, it } from "vitest";
import { redactedMessage } from "../src/adapter/cause.js";
import {
  BrokerClosedError,
  BrokerConnectionError,
  BulkEnqueueError,
  EnqueueOutcomeUnknownError,
  EnvelopeDecodeError,
  InvalidOptionsError,
  JobCancelledError,
  JobFailedError,
  JobNotFoundError,
  JobsError,
  JobTimeoutError,
  JobValidationError,
  LeaseLostError,
  NonRetryableError,
  PayloadTooLargeError,
  redact,
  StoreClosedError,
  StoreConnectionError,
  serializeError,
  UnknownJobError,
  UnknownQueueError,
  UnsupportedError,
  WaitTimeoutError,
} from "../src/errors.js";

const BRAND = Symbol.for("@jobs/core/JobsError");

describe("error classes", () => {
  const cases: [JobsError, string, string, boolean][] = [
    [new JobsError("unsupported", "m"), "JobsError", "unsupported", false],
    [new NonRetryableError("m"), "NonRetryableError", "non-retryable", false],
    [new JobValidationError("m", []), "JobValidationError", "job-validation", false],
    [new InvalidOptionsError("f", "m"), "InvalidOptionsError", "invalid-options", false],
    [new UnknownJobError("x"), "UnknownJobError", "unknown-job", false],
    [new UnknownQueueError("q"), "UnknownQueueError", "unknown-queue", false],
    [new EnvelopeDecodeError("m"), "EnvelopeDecodeError", "envelope-decode", false],
    [new PayloadTooLargeError(2, 1), "PayloadTooLargeError", "payload-too-large", false],
    [new JobTimeoutError(5), "JobTimeoutError", "job-timeout", true],
    [new BrokerClosedError(), "BrokerClosedError", "broker-closed", false],
    [new BrokerConnectionError("m"), "BrokerConnectionError", "broker-connection", true],
    [new EnqueueOutcomeUnknownError("m"), "EnqueueOutcomeUnknownError", "enqueue-outcome-unknown", true],
    [new LeaseLostError(), "LeaseLostError", "lease-lost", false],
    [new UnsupportedError("m"), "UnsupportedError", "unsupported", false],
    [new BulkEnqueueError("m", []), "BulkEnqueueError", "bulk-enqueue", false],
    [new StoreClosedError(), "StoreClosedError", "store-closed", false],
    [new StoreConnectionError("m"), "StoreConnectionError", "store-connection", true],
    [new StoreConnectionError("m", { retryable: false }), "StoreConnectionError", "store-connection", false],
    [new JobFailedError("m", "dead"), "JobFailedError", "job-failed", false],
    [new JobNotFoundError("j1"), "JobNotFoundError", "job-not-found", false],
    [new JobCancelledError("m"), "JobCancelledError", "job-cancelled", false],
    [new WaitTimeoutError("m"), "WaitTimeoutError", "wait-timeout", true],
  ];

  it.each(cases)("%s has its name, code and retryable flag", (error, name, code, retryable) => {
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(JobsError);
    expect(error.name).toBe(name);
    expect(error.code).toBe(code);
    expect(error.retryable).toBe(retryable);
    expect(JobsError.isInstance(error)).toBe(true);
    expect(typeof error.stack).toBe("string");
  });

  it("keeps the cause", () => {
    const native = new Error("ECONNREFUSED");
    expect(new BrokerConnectionError("[jobs] [redis] down", { cause: native }).cause).toBe(native);
    expect(new NonRetryableError("no", { cause: "why" }).cause).toBe("why");
    expect(new JobsError("unsupported", "m", { cause: native, retryable: true }).retryable).toBe(true);
    expect(new InvalidOptionsError("f", "m", { cause: native }).cause).toBe(native);
    expect(new EnvelopeDecodeError("m", { cause: native }).cause).toBe(native);
    expect("cause" in new JobsError("unsupported", "m")).toBe(false);
  });

  it("NonRetryableError stays non-retryable", () => {
    expect(new NonRetryableError("m", { retryable: true } as { cause?: unknown }).retryable).toBe(false);
  });

  it("carries the details of each kind", () => {
    const invalid = new InvalidOptionsError("queues[2]", "bad queue");
    expect(invalid.field).toBe("queues[2]");
    expect(invalid.message).toBe('[jobs] invalid option "queues[2]": bad queue');

    const tooLarge = new PayloadTooLargeError(2_000_000, 1_048_576);
    expect([tooLarge.size, tooLarge.limit]).toEqual([2_000_000, 1_048_576]);
    expect(tooLarge.message).toContain("2000000 bytes");

    expect(new JobTimeoutError(250).timeoutMs).toBe(250);
    expect(new UnknownQueueError("q1").queue).toBe("q1");

    const issues = [{ message: "Required", path: ["to"] }];
    expect(new JobValidationError("m", issues).issues).toEqual(issues);

    const outcomes = [{ status: "not-sent" as const }];
    expect(new BulkEnqueueError("m", outcomes).outcomes).toBe(outcomes);
  });

  it("UnknownJobError truncates absurdly long names", () => {
    const error = new UnknownJobError("n".repeat(10_000));
    expect(error.jobName).toHaveLength(129);
    expect(error.jobName.endsWith("…")).toBe(true);
    expect(error.message.length).toBeLessThan(300);
    expect(new UnknownJobError("short").jobName).toBe("short");
  });
});

describe("JobsError.isInstance", () => {
  it("is false for everything that is not a library error", () => {
    for (const value of [new Error("x"), new TypeError("x"), {}, null, undefined, "JobsError", 1, { code: "unsupported" }]) {
      expect(JobsError.isInstance(value)).toBe(false);
    }
  });

  it("recognises an error from another copy of the library by its Symbol.for brand", () => {
    // A second install has its own JobsError class; only the global symbol is shared.
    class OtherCopyError extends Error {
      readonly code = "broker-closed";
      readonly retryable = false;
    }
    Object.defineProperty(OtherCopyError.prototype, BRAND, { value: true });
    const foreign = new OtherCopyError("closed");
    expect(foreign).not.toBeInstanceOf(JobsError);
    expect(JobsError.isInstance(foreign)).toBe(true);
  });

  it("keeps the brand on the prototype, not on each instance", () => {
    const error = new NonRetryableError("x");
    expect(Object.getOwnPropertySymbols(error)).not.toContain(BRAND);
    expect(Object.getOwnPropertyDescriptor(JobsError.prototype, BRAND)?.value).toBe(true);
    expect(Object.getOwnPropertyDescriptor(JobsError.prototype, BRAND)?.enumerable).toBe(false);
  });
});

describe("serializeError", () => {
  it("serializes an Error with name, message and stack", () => {
    const error = new TypeError("bad thing");
    const s = serializeError(error);
    expect(s.name).toBe("TypeError");
    expect(s.message).toBe("bad thing");
    expect(s.stack).toContain("bad thing");
    expect(s.code).toBeUndefined();
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });

  it("keeps the code of a JobsError and of Node errors", () => {
    expect(serializeError(new JobTimeoutError(5)).code).toBe("job-timeout");
    expect(serializeError(Object.assign(new Error("refused"), { code: "ECONNREFUSED" })).code).toBe("ECONNREFUSED");
    expect(serializeError(Object.assign(new Error("n"), { code: 42 })).code).toBeUndefined();
  });

  it.each([
    ["a string", "plain failure", "plain failure"],
    ["undefined", undefined, "undefined"],
    ["null", null, "null"],
    ["a number", 42, "42"],
    ["an object", { reason: "nope", n: 1 }, '{"reason":"nope","n":1}'],
  ])("serializes %s as NonError", (_what, thrown, message) => {
    expect(serializeError(thrown)).toEqual({ name: "NonError", message });
  });

  it("survives values JSON.stringify cannot handle", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(serializeError(cyclic)).toEqual({ name: "NonError", message: "[object Object]" });
    expect(serializeError(10n).message).toBe("10");
    expect(serializeError(Symbol("s")).message).toBe("Symbol(s)");
  });

  it("truncates a huge message and stack", () => {
    const error = new Error("x".repeat(100_000));
    const s = serializeError(error);
    expect(s.message.length).toBeLessThanOrEqual(2_000);
    expect(s.message.length).toBeGreaterThan(100);
    expect((s.stack ?? "").length).toBeLessThanOrEqual(4_000);
    expect(serializeError("y".repeat(100_000)).message.length).toBeLessThanOrEqual(2_000);
    const longName = Object.assign(new Error("m"), { name: "N".repeat(1_000) });
    expect(serializeError(longName).name.length).toBeLessThanOrEqual(128);
  });

  it("redacts credentials in messages and stacks", () => {
    const error = new Error("connect failed: redis://app:hunter2-secret@db.internal:6379");
    const s = serializeError(error);
    expect(JSON.stringify(s)).not.toContain("hunter2-secret");
    expect(s.message).toContain("db.internal:6379");
    expect(JSON.stringify(serializeError("amqp://u:pw-123456@mq/?token=tok-abcdef"))).not.toMatch(/pw-123456|tok-abcdef/);
  });

  // Only the first 2,000 (message) or 4,000 (stack) characters and 1 KiB more are read, whatever
  // the input's size: time is bounded by construction, so these check what comes out, not how fast.
  it("cuts before it redacts: a 5 MB message keeps its first 2,000 characters, redacted", () => {
    const s = serializeError(new Error(`redis://u:early-secret@h ${"a".repeat(5_000_000)} redis://u:late-secret@h`));
    expect(s.message).toHaveLength(2_000);
    expect(s.message.startsWith("redis://u:***@h aaaa")).toBe(true);
    expect(s.message).not.toContain("secret");
    expect(serializeError(`${"word ".repeat(1_000_000)}amqp://u:p-secret@h`).message).toBe("word ".repeat(400));
  });

  it("removes a credential that straddles what is read whole, even when it is longer than the margin", () => {
    // The userinfo of the URL runs past the window: its "@" is never read, and the rest goes.
    const url = serializeError(new Error(`${"y".repeat(1_980)} redis://keep:${"s".repeat(5_000)}@host`));
    expect(url.message).toBe(`${"y".repeat(1_980)} redis://***`);
    const field = serializeError(new Error(`{ "password": "${"p".repeat(5_000_000)}" }`));
    expect(field.message).toBe('{ "password": "***');
    const header = serializeError(new Error(`Authorization: Bearer ${"t".repeat(5_000_000)}`));
    expect(header.message).toBe("Authorization: Bearer ***");
    const query = serializeError(new Error(`GET /q?apiKey=${"k".repeat(5_000_000)}`));
    expect(query.message).toBe("GET /q?apiKey=***");
    const auth = serializeError(new Error(`AUTH default ${"w".repeat(5_000_000)}`));
    expect(auth.message).toBe("AUTH *** ***");
  });

  it("redacts every one of many matches in what it keeps", () => {
    const many = serializeError(new Error("password=hunter2 ".repeat(300_000)));
    expect(many.message).toHaveLength(2_000);
    expect(many.message).not.toContain("hunter2");
    expect(many.message.startsWith("password=*** password=*** ")).toBe(true);
    const urls = serializeError(new Error("redis://u:pw-1@h ".repeat(300_000)));
    expect(urls.message).not.toContain("pw-1");
    const bearers = serializeError(new Error("Bearer abcdefgh12345678 ".repeat(300_000)));
    expect(bearers.message).not.toContain("abcdefgh");
  });

  it("gives the expected output on regex-backtracking bait", () => {
    // Long runs that almost match: schemes without "@", names without "=", quotes never closed, AUTH without arguments.
    for (const bait of [
      "a:/".repeat(2_000_000),
      `redis://${"a:".repeat(2_000_000)}`,
      "password ".repeat(600_000),
      `"token": "${'\\"'.repeat(1_000_000)}`,
      "AUTH ".repeat(1_000_000),
      `${"bearer ".repeat(700_000)}x`,
      "x-api-key:".repeat(500_000),
    ]) {
      const { message } = serializeError(new Error(bait));
      expect(message.length).toBeLessThanOrEqual(2_000);
      expect(message.length).toBeGreaterThan(0);
    }
    expect(serializeError(new Error("a:/".repeat(2_000_000))).message).toBe("a:/".repeat(2_000).slice(0, 2_000));
    expect(serializeError(new Error(`redis://${"a:".repeat(2_000_000)}`)).message).toBe("redis://***");
    expect(serializeError(new Error("password ".repeat(600_000))).message).toBe("password ".repeat(300).slice(0, 2_000));
    expect(serializeError(new Error("AUTH ".repeat(1_000_000))).message).toBe("AUTH ".repeat(400));
    expect(serializeError(new Error(`"token": "${'\\"'.repeat(1_000_000)}`)).message).toBe('"token": "***');
  });

  it("bounds a native client message the same way (redactedMessage)", () => {
    const message = redactedMessage(new Error(`redis://app:pw-77@h ${"z".repeat(5_000_000)}`));
    expect(message).toHaveLength(2_000);
    expect(message.startsWith("redis://app:***@h zzz")).toBe(true);
  });

  it("redacts a secret near the truncation point", () => {
    const s = serializeError(new Error(`${"x".repeat(1_990)} redis://u:secretsecret@h`));
    expect(s.message).not.toContain("secretsecret");
  });
});

describe("redact", () => {
  it.each([
    ["redis://user:secret@host:6379", "secret"],
    ["rediss://default:Sup3r-S3cret@redis.example.com:6380/0", "Sup3r-S3cret"],
    ["redis://:onlypassword@host", "onlypassword"],
    ["amqp://guest:guest@localhost", "guest"],
    ["amqps://worker:p%40ss@mq.example.com:5671/vhost", "p%40ss"],
    ["nats://s3cr3t-token@localhost:4222", "s3cr3t-token"],
    ["https://sqs.local/?password=pw-9f8e7d&token=tk-1a2b3c", "pw-9f8e7d"],
    ["https://sqs.local/?password=pw-9f8e7d&token=tk-1a2b3c", "tk-1a2b3c"],
    ["GET /q?X=1&secret=sss-555&accessKey=AKIAXXXX", "sss-555"],
    ["GET /q?X=1&secret=sss-555&accessKey=AKIAXXXX", "AKIAXXXX"],
    ["?secretAccessKey=wJalrXUt&pass=pp-77", "wJalrXUt"],
    ["?secretAccessKey=wJalrXUt&pass=pp-77", "pp-77"],
    ["first redis://a:one111@h1 then amqp://b:two222@h2", "one111"],
    ["first redis://a:one111@h1 then amqp://b:two222@h2", "two222"],
    ["REDIS://USER:UPPERSECRET@HOST", "UPPERSECRET"],
    ["redis://app:p@ss-unencoded@host:6379", "ss-unencoded"],
    ['{"user":"app","password":"json-s3cret"}', "json-s3cret"],
    ['{"password":"esc\\"aped-s3cret"}', "aped-s3cret"],
    ["{ username: 'app', password: 'inspect-s3cret' }", "inspect-s3cret"],
    ['credentials: { secretAccessKey: "wJalr-inspected" }', "wJalr-inspected"],
    ["Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig-bearer1", "eyJhbGciOiJIUzI1NiJ9"],
    ['headers: { Authorization: "Bearer tok-bearer2-abc" }', "tok-bearer2-abc"],
    ["authorization: Basic dXNlcjpwYXNzLWJhc2lj", "dXNlcjpwYXNzLWJhc2lj"],
    ["curl -H 'Bearer tok-bearer3-abcdef'", "tok-bearer3-abcdef"],
    ["x-api-key: k-header-12345", "k-header-12345"],
    ["X-Api-Key:k-header-67890", "k-header-67890"],
    ["GET /v1/items?apiKey=k-query-111&page=2", "k-query-111"],
    ["GET /v1/items?page=2&api_key=k-query-222", "k-query-222"],
    ["https://h/p?api-key=k-query-333", "k-query-333"],
    ["apiKey=k-plain-444 region=eu", "k-plain-444"],
    ["host=db password=libpq-s3cret user=app", "libpq-s3cret"],
    ['{"apiKey":"k-json-555"}', "k-json-555"],
    ["AUTH default redis-pw-1", "redis-pw-1"],
    ["AUTH redis-pw-2", "redis-pw-2"],
    ["ERR while running AUTH app redis-pw-3\n", "redis-pw-3"],
    ["HELLO 3 AUTH default redis-pw-4 SETNAME worker", "redis-pw-4"],
    ['1700000000.1 [0 127.0.0.1:5000] "auth" "default" "redis-pw-5"', "redis-pw-5"],
    ["{ name: 'auth', args: [ 'auth', 'app', 'redis-pw-6' ] }", "redis-pw-6"],
  ])("removes the secret from %j", (text, secret) => {
    expect(redact(text)).not.toContain(secret);
  });

  it("keeps the user name unless it is the secret", () => {
    expect(redact("redis://user:secret@host:6379")).toBe("redis://user:***@host:6379");
    expect(redact("redis://:secret@host")).toBe("redis://:***@host");
    expect(redact("amqp://guest:guest@localhost")).toBe("amqp://***@localhost");
    expect(redact("nats://s3cr3t-token@localhost:4222")).toBe("nats://***@localhost:4222");
  });

  it("keeps the field name and quotes of a secret field", () => {
    expect(redact(`{"password":"x1","host":"h"}`)).toBe(`{"password":"***","host":"h"}`);
    expect(redact("{ pass: 'x1', port: 1 }")).toBe("{ pass: '***', port: 1 }");
    expect(redact("bypass: 'not-a-secret'")).toBe("bypass: 'not-a-secret'");
  });

  it("replaces query secrets with ***", () => {
    expect(redact("?password=x&token=y")).toBe("?password=***&token=***");
    expect(redact("https://h/p?a=1&password=x&b=2")).toBe("https://h/p?a=1&password=***&b=2");
  });

  it("keeps the host, port and path so the message stays useful", () => {
    const out = redact("redis://user:secret@host:6379/2");
    expect(out).toContain("redis://");
    expect(out).toContain("@host:6379/2");
    expect(out).toContain("***");
  });

  it("keeps the scheme of an Authorization header and the command of an AUTH line", () => {
    expect(redact("Authorization: Bearer abc.def.ghi")).toBe("Authorization: Bearer ***");
    expect(redact("x-api-key: abc")).toBe("x-api-key: ***");
    expect(redact("AUTH default pw")).toBe("AUTH *** ***");
    expect(redact("AUTH pw")).toBe("AUTH ***");
    expect(redact("> AUTH app pw\nOK")).toBe("> AUTH *** ***\nOK");
    expect(redact('["AUTH app pw"]')).toBe('["AUTH *** ***"]');
    expect(redact('"AUTH" "default" "pw"')).toBe('"AUTH" "***" "***"');
  });

  it("leaves text without credentials alone", () => {
    for (const text of [
      "redis://localhost:6379",
      "connect ECONNREFUSED 127.0.0.1:5672",
      "user@example.com wrote: a:b",
      "?page=2&sort=asc",
      "NOAUTH Authentication required.",
      "WRONGPASS invalid username-password pair or user is disabled.",
      "ERR AUTH <password> called without any password configured for the default user.",
      "the bearer of bad news",
      "AUTH failed for user app on 127.0.0.1:6379",
      "bypass=1 x-passport: 2 oauth=true",
    ]) {
      expect(redact(text)).toBe(text);
    }
  });
});
