import { describe, expect, it } from "vitest";
import { isLoopbackHost } from "../src/adapter/host.js";

describe("isLoopbackHost", () => {
  it.each(["localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1", "[::1]"])("%s is loopback", (host) => {
    expect(isLoopbackHost(host)).toBe(true);
  });
  it.each(["redis.internal", "10.0.0.5", "127.0.0.1.evil.example", "1127.0.0.1", "::2", "", "localhost.example"])(
    "%j is not loopback",
    (host) => {
      expect(isLoopbackHost(host)).toBe(false);
    },
  );
});
