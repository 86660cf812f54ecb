/** Set-up of the memory adapter's own tests (core's behaviour tests have theirs in packages/core/test/support.ts). */
import { onTestFinished } from "vitest";
import { createMemoryBroker, type MemoryBroker, type MemoryBrokerOptions } from "../src/index.js";

let counter = 0;

/** A queue name no other test uses (1-63 characters, no "__"). */
export function uniqueQueue(label: string): string {
  counter++;
  return `${label.slice(0, 30)}-${process.pid}-${counter}`;
}

/** Brokers made through it close when the current test finishes. */
export function scope(): { broker(options?: MemoryBrokerOptions): MemoryBroker } {
  return {
    broker(options = {}) {
      const broker = createMemoryBroker(options);
      onTestFinished(() => broker.close());
      return broker;
    },
  };
}
