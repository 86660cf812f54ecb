/**
 * The Lua scripts, read once from `lua/` at the package root (the same relative path from `src/`
 * and from `dist/`, so sources and the build share one copy) and registered on each connection.
 * ioredis sends EVAL the first time a script runs on a socket and EVALSHA after that, falling
 * back to EVAL on NOSCRIPT (a restarted or flushed server).
 */
import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";

/** The broker's scripts: name → number of KEYS it takes. */
const SCRIPTS = { publish: 12, fetch: 9, settle: 12, inspect: 9, purge: 10 } as const;

/** A script name. */
export type ScriptName = keyof typeof SCRIPTS;

/** A set of scripts: the files `lua/<dir><name>.lua`, registered as commands `<command><name>`. */
export interface ScriptSet<N extends string> {
  /** Name → number of KEYS it takes. */
  readonly keys: Readonly<Record<N, number>>;
  /** Folder under `lua/`, with its trailing slash ("" for the broker's). */
  readonly dir: string;
  /** Prefix of the command names (the broker's `jobs_`, the store's `jobs_store_`). */
  readonly command: string;
  /** Files under `lua/` put in front of every script of the set (shared helpers), in order. */
  readonly prelude?: readonly string[];
  /** Lua put in front of everything else (the locals the preludes and scripts read). */
  readonly header?: string;
}

/** The broker's scripts. */
export const BROKER_SCRIPTS: ScriptSet<ScriptName> = { keys: SCRIPTS, dir: "", command: "jobs_", header: "local FUSED = false" };

/**
 * The broker's fetch and settle fused with a job store on the same server (packages/redis/src/fusion.ts):
 * the same scripts, with the store's helpers in front and the store's base as their last key.
 */
export const FUSED_SCRIPTS: ScriptSet<"fetch" | "settle"> = {
  keys: { fetch: SCRIPTS.fetch + 1, settle: SCRIPTS.settle + 1 },
  dir: "",
  command: "jobs_fused_",
  header: "local FUSED = true\nlocal STORE_BASE = KEYS[#KEYS]",
  prelude: ["store/common"],
};

const sources = new Map<string, string>();

function source(path: string): string {
  let lua = sources.get(path);
  if (lua === undefined) {
    lua = readFileSync(new URL(`../../lua/${path}.lua`, import.meta.url), "utf8");
    sources.set(path, lua);
  }
  return lua;
}

function script(set: ScriptSet<string>, name: string): string {
  return [set.header ?? "", ...(set.prelude ?? []).map(source), source(`${set.dir}${name}`)].join("\n");
}

/** What runs the scripts: the broker's command connection. */
export interface Scripts {
  /** Runs a script; `timed` bounds the wait by the request timeout (the command itself may still run later). */
  run(name: ScriptName, keys: readonly string[], args: readonly (string | number)[], timed?: boolean): Promise<unknown>;
  /** Runs the fetch or settle fused with a job store (the store's base is the last key). */
  runFused(name: "fetch" | "settle", keys: readonly string[], args: readonly (string | number)[], timed?: boolean): Promise<unknown>;
}

/** The scripts as commands of a connection (`<command><name>(...keys, ...args)`). */
export type ScriptRunner<N extends string = ScriptName> = (
  name: N,
  keys: readonly string[],
  args: readonly (string | number)[],
) => Promise<unknown>;

/** Registers every script of `set` (the broker's by default) on `redis` and returns a function that runs one by name. */
export function registerScripts(redis: Redis): ScriptRunner;
export function registerScripts<N extends string>(redis: Redis, set: ScriptSet<N>): ScriptRunner<N>;
export function registerScripts(redis: Redis, set: ScriptSet<string> = BROKER_SCRIPTS): ScriptRunner<string> {
  for (const name of Object.keys(set.keys)) {
    redis.defineCommand(`${set.command}${name}`, { numberOfKeys: set.keys[name] as number, lua: script(set, name) });
  }
  const commands = redis as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>;
  return (name, keys, args) =>
    (commands[`${set.command}${name}`] as (...a: (string | number)[]) => Promise<unknown>).call(redis, ...keys, ...args);
}
