import { type BrokerCapabilities, type Duration, InvalidOptionsError, type LoggerOption, parseDuration } from "@jobs/core/adapter";
import { memoryCapabilities, memoryInstanceCapabilities } from "./capabilities.js";
import { MemoryServer } from "./server.js";

/** Options of `createMemoryBroker`. */
export interface MemoryBrokerOptions {
  /** Share queues with other memory brokers (like connections to one server). @default a new private server */
  readonly server?: MemoryServer;
  /** Largest message accepted, in bytes. @default 1048576 (1 MiB, as SQS) */
  readonly maxPayloadBytes?: number;
  /** How long a published id is remembered for dedupe. @default "5m" */
  readonly dedupeWindow?: Duration;
  /** `"none"` turns native priority off so core's per-level emulation runs (for tests). @default "native" */
  readonly priority?: "native" | "none";
  /** Longest native delay; lower it to exercise core's re-delay on receipt (for tests). @default Infinity */
  readonly maxDelay?: Duration;
  /** Start paused: nothing is delivered until `resume()`. @default false */
  readonly paused?: boolean;
  /** Where this broker's warnings and errors are logged (pino, console, …). `false` logs nothing. @default `console`, once per code, for what no listener hears */
  readonly logger?: LoggerOption;
}

/** `MemoryBrokerOptions` checked, with their defaults filled in. */
export interface ResolvedMemoryOptions {
  readonly server: MemoryServer;
  /** The instance's capabilities: `maxPayloadBytes`, `priority`, `maxDelayMs` and `dedupeWindowMs` come from the options. */
  readonly capabilities: BrokerCapabilities;
  readonly paused: boolean;
}

/** Checks `options` (InvalidOptionsError naming the field) and fills in the defaults. */
export function resolveMemoryOptions(options: MemoryBrokerOptions): ResolvedMemoryOptions {
  const server = options.server ?? new MemoryServer();
  if (!(server instanceof MemoryServer)) throw new InvalidOptionsError("server", "expected a server from createMemoryServer()");
  const maxPayloadBytes = options.maxPayloadBytes ?? memoryCapabilities.maxPayloadBytes;
  if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 1) {
    throw new InvalidOptionsError("maxPayloadBytes", `expected a positive integer, got ${String(maxPayloadBytes)}`);
  }
  const priority = options.priority ?? "native";
  if (priority !== "native" && priority !== "none") throw new InvalidOptionsError("priority", 'expected "native" or "none"');
  const dedupeWindowMs = parseDuration(options.dedupeWindow ?? memoryCapabilities.dedupeWindowMs, "dedupeWindow");
  const maxDelayMs = options.maxDelay === undefined ? memoryCapabilities.maxDelayMs : parseDuration(options.maxDelay, "maxDelay");
  if (maxDelayMs < 10) throw new InvalidOptionsError("maxDelay", "expected at least 10 ms (shorter would spin re-delaying early jobs)");
  const capabilities = memoryInstanceCapabilities({ maxPayloadBytes, priority, maxDelayMs, dedupeWindowMs });
  return { server, capabilities, paused: options.paused === true };
}
