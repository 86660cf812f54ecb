/**
 * The Lua scripts, read once from `lua/` at the package root (the same relative path from `src/`
 * and from `dist/`, so sources and the build share one copy) and registered on each connection.
 * ioredis sends EVAL the first time a script runs on a socket and EVALSHA after that, falling
 * back to EVAL on NOSCRIPT (a restarted or flushed server).
 */
import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";

/** Script name → number of KEYS it takes. */
const SCRIPTS = { publish: 12, fetch: 9, settle: 12, inspect: 9, purge: 10 } as const;

/** A script name. */
export type ScriptName = keyof typeof SCRIPTS;

let sources: Record<ScriptName, string> | undefined;

function load(): Record<ScriptName, string> {
  if (sources === undefined) {
    const read = (name: ScriptName): string => readFileSync(new URL(`../../lua/${name}.lua`, import.meta.url), "utf8");
    sources = { publish: read("publish"), fetch: read("fetch"), settle: read("settle"), inspect: read("inspect"), purge: read("purge") };
  }
  return sources;
}

/** What runs the scripts: the broker's command connection. */
export interface Scripts {
  /** Runs a script; `timed` bounds the wait by the request timeout (the command itself may still run later). */
  run(name: ScriptName, keys: readonly string[], args: readonly (string | number)[], timed?: boolean): Promise<unknown>;
}

/** The scripts as commands of a connection (`jobs_<name>(...keys, ...args)`). */
export type ScriptRunner = (name: ScriptName, keys: readonly string[], args: readonly (string | number)[]) => Promise<unknown>;

/** Registers every script on `redis` and returns a function that runs one by name. */
export function registerScripts(redis: Redis): ScriptRunner {
  const lua = load();
  for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
    redis.defineCommand(`jobs_${name}`, { numberOfKeys: SCRIPTS[name], lua: lua[name] });
  }
  const commands = redis as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>;
  return (name, keys, args) => (commands[`jobs_${name}`] as (...a: (string | number)[]) => Promise<unknown>).call(redis, ...keys, ...args);
}
