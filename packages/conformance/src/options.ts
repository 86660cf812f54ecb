import type { Broker, JobStore } from "@jobs/core";

/** A TCP address of a broker (or of the fault proxy in front of it). */
export interface ConformanceEndpoint {
  /** Host name or IP address. */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
}

/** What the suite passes to `createBroker`. */
export interface BrokerFactoryContext {
  /**
   * Connect here instead of the configured address: set when a case runs the broker behind the
   * suite's fault proxy (only when `ConformanceOptions.endpoint` is given).
   */
  readonly endpoint?: ConformanceEndpoint;
}

/** Creates a new broker instance (a new connection) each time it is called. */
export type BrokerFactory = (context?: BrokerFactoryContext) => Broker | Promise<Broker>;

/**
 * A private broker server the suite may take down and bring back (never the machine's own), for
 * the cases on a broker that has never been reached.
 */
export interface FirstConnectionServer {
  /**
   * A new broker (a new connection) to this server, with a short `connectTimeout` (a few seconds:
   * a case waits it out at least once).
   */
  createBroker(): Broker | Promise<Broker>;
  /** Takes the server down; resolves once nothing listens on its address. */
  stop(): Promise<void>;
  /** Brings it up on the same address; resolves once it accepts connections. */
  start(): Promise<void>;
}

/** Options of `runConformance` and of every group function. */
export interface ConformanceOptions {
  /** Name shown in the report, e.g. "redis". */
  readonly name: string;
  /**
   * Returns a new broker instance on every call; instances must share state the way connections
   * to one server do (publish through one, consume through another).
   */
  readonly createBroker: BrokerFactory;
  /**
   * Where the broker listens. When given, the reconnect cases put a TCP fault proxy in front of it
   * and pass the proxy's address to `createBroker` as `context.endpoint`.
   * @default undefined (reconnect cases are skipped)
   */
  readonly endpoint?: ConformanceEndpoint;
  /** Restarts the broker server; resolves once it accepts connections again. @default undefined (restart cases are skipped) */
  readonly restart?: () => Promise<void>;
  /**
   * A private server to take down and bring up: the first-connection cases create brokers while it
   * is down. It is left up after each case.
   * @default undefined (first-connection cases are skipped)
   */
  readonly firstConnection?: FirstConnectionServer;
  /** Multiplies every time limit and window of the suite (e.g. 3 for a slow CI machine). @default 1 */
  readonly timeScale?: number;
  /**
   * Returns a job store (a new instance on every call). When given, every client, worker and admin
   * of the job-semantics groups gets the case's store (one instance per case, closed when it ends),
   * and the cases that need a store run too; the transport groups ignore it. The store must pair
   * with this broker (an in-process store only with the memory broker).
   * @default undefined (jobs are broker messages only; the store cases are skipped)
   */
  readonly createStore?: () => JobStore | Promise<JobStore>;
}
