import type { JobStore } from "@jobs/core/adapter";

/** Creates a new store instance (its own connections) each time it is called. */
export type StoreFactory = () => JobStore | Promise<JobStore>;

/**
 * A store on a private server the suite may stop and start (e.g. `startPrivateRedis` with AOF on):
 * the restart cases run only when this is given.
 */
export interface StoreRestart {
  /** Returns a new store instance on the private server on every call. */
  readonly createStore: StoreFactory;
  /** Stops the private server as a crash would (`PrivateServer.kill`); resolves once it is down. */
  readonly kill: () => Promise<void>;
  /** Starts it again on the same port and data (`PrivateServer.start`); resolves once it accepts connections. */
  readonly start: () => Promise<void>;
}

/** Options of `runStoreConformance` and of every store group function. */
export interface StoreConformanceOptions {
  /** Name shown in the report, e.g. "redis". */
  readonly name: string;
  /**
   * Returns a new store instance on every call. Unless the store is `inProcess`, instances must
   * share their records the way connections to one server do (the suite watches through one
   * instance while another writes). Cases use fresh ids, so instances may share data with other runs.
   */
  readonly createStore: StoreFactory;
  /** Names of cases (the exact case title) to report as skipped. @default [] */
  readonly skip?: readonly string[];
  /** A store on a private server and how to stop and start it. @default undefined (restart cases are skipped) */
  readonly restart?: StoreRestart;
  /** Multiplies every time limit and claim or lease duration of the suite (e.g. 3 for a slow CI machine). @default 1 */
  readonly timeScale?: number;
}
