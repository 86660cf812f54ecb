/**
 * The per-case fixture. A case asks its group for one and gets what it needs: broker instances
 * opened from the factory, a unique queue, and for job cases a client, an admin, job definitions
 * and workers that record their events (all on the case's job store, when the options give one).
 * Everything the case opened is closed, and every queue it used purged, when the case ends (pass or
 * fail), so a case is its scenario and its assertions.
 */
import {
  type Admin,
  type Broker,
  type Client,
  type ClientOptions,
  type CloseOptions,
  createAdmin,
  createClient,
  createWorker,
  defineJob,
  type JobDefinition,
  type JobHandler,
  type JobOptions,
  type JobStore,
  type QueueCounts,
  WORKER_EVENTS,
  type Worker,
  type WorkerEventMap,
  type WorkerOptions,
} from "@jobs/core";
import type { BrokerCapabilities, OutgoingMessage } from "@jobs/core/adapter";
import { waitForEvent } from "@jobs/core/testing";
import { describe, onTestFinished } from "vitest";
import type { BrokerFactoryContext, ConformanceOptions } from "../options.js";
import {
  type AutoAck,
  assertConformanceOptions,
  type CountsSource,
  capabilitiesOf,
  expectCounts,
  Inbox,
  message,
  publishAll,
  type Timing,
  timingOf,
  uniqueQueueName,
} from "./harness.js";

/** Resources of one case, released when it finishes: workers, then the store, then brokers, then queues. */
class Scope {
  readonly #options: ConformanceOptions;
  readonly #context: BrokerFactoryContext;
  readonly #brokers: Broker[] = [];
  readonly #closers: (() => Promise<void>)[] = [];
  readonly #queues: { readonly name: string; readonly logical: boolean }[] = [];
  #store: JobStore | undefined;

  constructor(options: ConformanceOptions, context: BrokerFactoryContext) {
    this.#options = options;
    this.#context = context;
  }

  /** A new broker instance (its own connection), closed at the end of the case. */
  async broker(): Promise<Broker> {
    const broker = await this.#options.createBroker(this.#context);
    this.#brokers.push(broker);
    return broker;
  }

  /** The case's job store (one instance, from `createStore`), closed after the workers at the end of the case. */
  async store(): Promise<JobStore | undefined> {
    const create = this.#options.createStore;
    if (create === undefined) return undefined;
    this.#store ??= await create();
    return this.#store;
  }

  /** Purges `name` at the end of the case: a physical queue, or with `logical` every physical queue core derives from it. */
  queue(name: string, logical: boolean): string {
    this.#queues.push({ name, logical });
    return name;
  }

  /** Closes something (a worker) before the brokers at the end of the case. */
  defer(close: () => Promise<void>): void {
    this.#closers.push(close);
  }

  /** Closes workers, then the store, then brokers, then purges every queue the case used through a fresh instance. */
  async dispose(): Promise<void> {
    const errors: unknown[] = [];
    const collect = (results: PromiseSettledResult<unknown>[]): void => {
      for (const r of results) if (r.status === "rejected") errors.push(r.reason);
    };
    collect(await Promise.allSettled(this.#closers.map((close) => close())));
    if (this.#store !== undefined) collect(await Promise.allSettled([this.#store.close()]));
    collect(await Promise.allSettled(this.#brokers.map((b) => b.close())));
    if (this.#queues.length > 0) {
      // Straight to the broker, never through a fault proxy the case may have left paused.
      const cleaner = await this.#options.createBroker({});
      try {
        const admin = createAdmin({ broker: cleaner });
        for (const q of this.#queues) await (q.logical ? admin.purge(q.name) : cleaner.purge(q.name));
      } finally {
        await cleaner.close();
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}

/** How a case wants its fixture. */
export interface CaseSetup {
  /** Broker instances opened, in order, before the case starts (`brokers[0]` is the producer, `brokers[1]` the consumer). @default 2 */
  readonly brokers?: number;
  /** What `createBroker` gets (the fault proxy's endpoint). @default {} */
  readonly context?: BrokerFactoryContext;
}

/** What both kinds of fixture have. */
export interface CaseFixture {
  /** The case's unique queue, purged at the end. */
  readonly q: string;
  /** The instances opened for the case, in order (typed as three; only `setup.brokers` exist). */
  readonly brokers: readonly [Broker, Broker, Broker, ...Broker[]];
  /** `brokers[0]`: the instance cases publish (or enqueue) through. */
  readonly producer: Broker;
  /** `brokers[1]`: the instance cases consume through (absent when the case opened one instance). */
  readonly consumer: Broker;
  /** Another broker instance (its own connection), closed at the end of the case. */
  broker(): Promise<Broker>;
}

/** Where and how `TransportFixture.inbox` consumes. */
export interface InboxSetup {
  /** Most unsettled deliveries at once. */
  readonly prefetch: number;
  /** The lease of each delivery. @default t.longLease */
  readonly leaseMs?: number;
  /** @default false */
  readonly autoAck?: AutoAck;
  /** @default the fixture's consumer */
  readonly broker?: Broker;
  /** @default the fixture's queue */
  readonly queue?: string;
}

/** Which counts `TransportFixture.expectCounts` waits on. */
export interface CountsCheck {
  /** @default the fixture's queue */
  readonly queue?: string;
  /** Who is asked. @default the fixture's producer */
  readonly source?: CountsSource;
  /** @default t.wait */
  readonly timeout?: number;
  /** Do not compare `active` (brokers whose `exactActiveCount` is false). @default false */
  readonly ignoreActive?: boolean;
}

/** A transport case's fixture: the Broker contract alone, on a unique physical queue. */
export interface TransportFixture extends CaseFixture {
  /** Purges `name` too at the end of the case (a queue derived from `q`). */
  adopt(name: string): string;
  /** A new inbox consuming the queue on a broker (with a long lease unless told). */
  inbox(setup: InboxSetup): Promise<Inbox>;
  /** Publishes to `q` through the producer and expects every message accepted as new; a string is a new message with that body. */
  publish(...messages: readonly (string | OutgoingMessage)[]): Promise<void>;
  /** Waits until the counts of the queue equal `expected`. */
  expectCounts(expected: QueueCounts, check?: CountsCheck): Promise<void>;
}

/** One recorded worker event. */
export type WorkerEvent = { [E in keyof WorkerEventMap]: { readonly type: E; readonly data: WorkerEventMap[E] } }[keyof WorkerEventMap];

/** A worker that records every event it emits, in order. */
export class RecordedWorker<Ctx> {
  /** Every event so far, in order. */
  readonly events: WorkerEvent[] = [];
  readonly #worker: Worker<Ctx>;

  constructor(worker: Worker<Ctx>) {
    this.#worker = worker;
    for (const type of WORKER_EVENTS) worker.on(type, (data) => this.events.push({ type, data } as WorkerEvent));
  }

  /** Registers the handler of a job (before `start`). */
  handle<I, O>(job: JobDefinition<I, O>, handler: JobHandler<O, Ctx>): this {
    this.#worker.handle(job, handler);
    return this;
  }

  /** Starts consuming. */
  start(): Promise<void> {
    return this.#worker.start();
  }

  /** Closes the worker (the fixture closes it anyway at the end, with no grace). */
  close(options?: CloseOptions): Promise<void> {
    return this.#worker.close(options);
  }

  /** The next `event` (ask before triggering it). */
  next<E extends keyof WorkerEventMap & string>(event: E, timeout: number): Promise<WorkerEventMap[E]> {
    return waitForEvent<WorkerEventMap, E>(this.#worker, event, () => true, { timeout });
  }

  /** The data of every `event` so far, in order. */
  of<E extends keyof WorkerEventMap>(event: E): WorkerEventMap[E][] {
    return this.events.filter((e) => e.type === event).map((e) => e.data as WorkerEventMap[E]);
  }
}

/** A worker's options in a job case: `broker` defaults to the fixture's consumer. */
export type WorkerSetup<Ctx> = Partial<WorkerOptions<Ctx>>;

/** How a job case wants its fixture. */
export interface JobCaseSetup extends CaseSetup {
  /** Options of the client (beside its broker). @default {} */
  readonly client?: Omit<ClientOptions, "broker">;
}

/** A job case's fixture: core's client, admin and workers on a unique logical queue. */
export interface JobFixture extends CaseFixture {
  /** A client on the producer (with the case's store, if any). */
  readonly client: Client;
  /** An admin on the producer (with the case's store, if any). */
  readonly admin: Admin;
  /** The case's store (`ConformanceOptions.createStore`), shared by its client, admin and workers; undefined without one. */
  readonly store: JobStore | undefined;
  /** A job definition on `q`. */
  job<P>(name: string, options?: Omit<JobOptions, "name" | "queue">): JobDefinition<P>;
  /**
   * A worker (on the consumer unless told, lease `t.lease`, concurrency 1, the case's store, then
   * `setup`) that records its events; closed with no grace at the end of the case.
   */
  worker<Ctx = undefined>(setup?: WorkerSetup<Ctx>): RecordedWorker<Ctx>;
  /** A worker that handles `job` with `handler`, started. */
  run<I, O, Ctx = undefined>(job: JobDefinition<I, O>, handler: JobHandler<O, Ctx>, setup?: WorkerSetup<Ctx>): Promise<RecordedWorker<Ctx>>;
  /** Waits until the counts of `q`, as the admin sees them, equal `expected`. */
  expectCounts(expected: QueueCounts, timeout?: number): Promise<void>;
}

/** What a group's body gets. */
export interface GroupEnv {
  /** The broker's capabilities. */
  readonly caps: BrokerCapabilities;
  /** Scaled time limits. */
  readonly t: Timing;
  /** The options give a store (`createStore`): job cases run with one, and the store cases are not skipped. */
  readonly withStore: boolean;
  /** The fixture of a transport case; `tag` goes into its queue's name. */
  transportCase(tag: string, setup?: CaseSetup): Promise<TransportFixture>;
  /** The fixture of a job case; `tag` goes into its queue's name. */
  jobCase(tag: string, setup?: JobCaseSetup): Promise<JobFixture>;
}

/** Opens the scope, the queue and the brokers every fixture starts with. */
async function openCase(
  options: ConformanceOptions,
  tag: string,
  setup: CaseSetup,
  logical: boolean,
): Promise<{ scope: Scope; base: CaseFixture }> {
  const scope = new Scope(options, setup.context ?? {});
  onTestFinished(() => scope.dispose());
  const q = scope.queue(uniqueQueueName(tag), logical);
  const brokers: Broker[] = [];
  for (let i = 0; i < (setup.brokers ?? 2); i++) brokers.push(await scope.broker());
  const base: CaseFixture = {
    q,
    brokers: brokers as unknown as CaseFixture["brokers"],
    producer: brokers[0] as Broker,
    consumer: brokers[1] as Broker,
    broker: () => scope.broker(),
  };
  return { scope, base };
}

async function transportCase(options: ConformanceOptions, t: Timing, tag: string, setup: CaseSetup = {}): Promise<TransportFixture> {
  const { scope, base } = await openCase(options, tag, setup, false);
  return {
    ...base,
    adopt: (name) => scope.queue(name, false),
    inbox: ({ prefetch, leaseMs = t.longLease, autoAck, broker = base.consumer, queue = base.q }) =>
      new Inbox({ autoAck: autoAck ?? false }).listen(broker, queue, { prefetch, leaseMs }),
    publish: (...messages) =>
      publishAll(
        base.producer,
        base.q,
        messages.map((m) => (typeof m === "string" ? message(m) : m)),
      ),
    expectCounts: (expected, check = {}) =>
      expectCounts(check.source ?? base.producer, check.queue ?? base.q, expected, check.timeout ?? t.wait, {
        ignoreActive: check.ignoreActive ?? false,
      }),
  };
}

async function jobCase(options: ConformanceOptions, t: Timing, tag: string, setup: JobCaseSetup = {}): Promise<JobFixture> {
  const { scope, base } = await openCase(options, tag, setup, true);
  const store = await scope.store();
  // Spread, not `store: undefined`: the options are exactOptionalPropertyTypes.
  const withStore = store === undefined ? {} : { store };
  const admin = createAdmin({ broker: base.producer, ...withStore });
  const worker = <Ctx>(workerSetup: WorkerSetup<Ctx> = {}): RecordedWorker<Ctx> => {
    const created = createWorker<Ctx>({ broker: base.consumer, lease: t.lease, concurrency: 1, ...withStore, ...workerSetup });
    scope.defer(() => created.close({ timeout: 0 }));
    return new RecordedWorker(created);
  };
  return {
    ...base,
    client: createClient({ broker: base.producer, ...withStore, ...setup.client }),
    admin,
    store,
    job: <P>(name: string, jobOptions: Omit<JobOptions, "name" | "queue"> = {}) => defineJob<P>({ ...jobOptions, name, queue: base.q }),
    worker,
    run: async (job, handler, workerSetup) => {
      const recorded = worker(workerSetup).handle(job, handler);
      await recorded.start();
      return recorded;
    },
    expectCounts: (expected, timeout = t.wait) => expectCounts(admin, base.q, expected, timeout),
  };
}

/**
 * Registers one group: a describe block whose cases are collected once the broker's capabilities
 * are known (vitest awaits async describe factories), so gates can use `describe.skipIf`.
 */
export function group(options: ConformanceOptions, title: string, body: (env: GroupEnv) => void): void {
  assertConformanceOptions(options);
  describe(title, async () => {
    const caps = await capabilitiesOf(options);
    const t = timingOf(options, caps);
    body({
      caps,
      t,
      withStore: options.createStore !== undefined,
      transportCase: (tag, setup) => transportCase(options, t, tag, setup),
      jobCase: (tag, setup) => jobCase(options, t, tag, setup),
    });
  });
}
