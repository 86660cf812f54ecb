import { describe, expect, it } from "vitest";
import { sequenceOf } from "../src/internal/delivery.js";

describe("ack subject parsing", () => {
  it("reads the stream sequence from the v1 form and from the newer form with domain, account hash and a random token", () => {
    expect(sequenceOf("$JS.ACK.JOBS.ready_q__p2.3.1042.977.1795703773827000000.12")).toBe("1042");
    expect(sequenceOf("$JS.ACK.hub.ACCHASH.JOBS.ready_q__p2.3.1042.977.1795703773827000000.12.x7Yz")).toBe("1042");
    expect(sequenceOf("$JS.ACK._.ACCHASH.JOBS.ready_q.1.7.7.1795703773827000000.0.r")).toBe("7");
  });
});
