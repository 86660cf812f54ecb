// The option vocabulary toolkit: renamed options (deprecated aliases, one warning each) and the
// shape check that replaces `instanceof` on clients from other packages.
import { assertClientShape, hasMethods, InvalidOptionsError, renamedOption, warnDeprecated } from "@jobs/core/adapter";
import { describe, expect, it } from "vitest";
import { jobsWarningsOf } from "../src/testing/index.js";

describe("renamedOption", () => {
  it("returns the new name's value, and the old name's value with one DeprecationWarning per process", async () => {
    expect(renamedOption<number>("test", { fresh: 1 }, "stale", "fresh")).toBe(1);
    expect(renamedOption<number>("test", {}, "stale", "fresh")).toBeUndefined();
    const warnings = await jobsWarningsOf(() => {
      expect(renamedOption<number>("test", { stale: 2 }, "stale", "fresh")).toBe(2);
      expect(renamedOption<number>("test", { stale: 3 }, "stale", "fresh")).toBe(3);
    });
    expect(warnings.map((w) => [w.name, w.code])).toEqual([["DeprecationWarning", "JOBS_DEP_TEST_STALE"]]);
    expect(warnings[0]?.message).toBe(
      '[jobs] [test] option "stale" is deprecated and will be removed in the next major release: use "fresh"',
    );
    expect(await jobsWarningsOf(() => renamedOption("test", { stale: 4 }, "stale", "fresh"))).toEqual([]);
  });

  it("refuses both names at once, naming the old one", () => {
    let error: unknown;
    try {
      renamedOption("test", { stale: 1, fresh: 2 }, "stale", "fresh");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(error).toMatchObject({ field: "stale", message: expect.stringContaining('give only "fresh"') });
  });

  it("warnDeprecated says each code once", async () => {
    const warnings = await jobsWarningsOf(() => {
      warnDeprecated("JOBS_DEP_TEST_ONCE", "once");
      warnDeprecated("JOBS_DEP_TEST_ONCE", "once");
      warnDeprecated("JOBS_DEP_TEST_OTHER", "other");
    });
    expect(warnings.map((w) => w.message)).toEqual(["once", "other"]);
  });
});

describe("client shapes", () => {
  class FromAnotherCopy {
    send(): void {}
    destroy(): void {}
  }

  it("accepts any object with the methods, own or inherited, whatever its class", () => {
    expect(hasMethods(new FromAnotherCopy(), ["send", "destroy"])).toBe(true);
    expect(hasMethods({ send: () => {}, destroy: () => {} }, ["send", "destroy"])).toBe(true);
    expect(() => assertClientShape("client", new FromAnotherCopy(), ["send", "destroy"], "an SQSClient")).not.toThrow();
  });

  it("refuses a value without them, naming the field and the first missing method", () => {
    expect(hasMethods({ send: () => {} }, ["send", "destroy"])).toBe(false);
    expect(hasMethods({ send: () => {}, destroy: 1 }, ["send", "destroy"])).toBe(false);
    expect(hasMethods(null, ["send"])).toBe(false);
    expect(hasMethods("send", ["send"])).toBe(false);
    expect(() => assertClientShape("client", { send: () => {} }, ["send", "destroy"], "an SQSClient")).toThrow(
      '[jobs] invalid option "client": expected an SQSClient (it has no destroy() method)',
    );
    expect(() => assertClientShape("client", 42, ["send"], "an SQSClient")).toThrow(InvalidOptionsError);
  });
});
