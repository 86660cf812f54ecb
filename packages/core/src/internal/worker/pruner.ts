/**
 * The pruner: applies retention to the finished records of the jobs this worker handles, each job
 * name in one worker at a time through a store lease per name (`pruner:<name>`; leases only save
 * work: two pruners would only race to remove the same records). A lease per name, not one for the
 * store: workers that handle different jobs each prune their own.
 */
import { serializeError } from "../../errors.js";
import type { Emitter, WorkerEventMap } from "../../events.js";
import type { StoreLink } from "../../records.js";
import { DEFAULT_RETAIN, FINISHED_STATUSES, type RetainLimits } from "../../retention.js";
import type { FinishedStatus, PruneRequest } from "../../store.js";
import type { Registered } from "./held-delivery.js";
import { Periodic } from "./periodic.js";

/** What the pruner needs from the worker. */
export interface PrunerHost {
  readonly link: StoreLink;
  readonly owner: string;
  readonly events: Emitter<WorkerEventMap>;
  readonly handlers: ReadonlyMap<string, Registered>;
  /** The worker's `retain`, parsed. */
  readonly retain: Partial<Record<FinishedStatus, RetainLimits>> | undefined;
  readonly intervalMs: number;
}

/** Records removed per call; the pruner calls again while a call removes this many. */
const BATCH = 1_000;

export class Pruner extends Periodic {
  readonly #host: PrunerHost;

  constructor(host: PrunerHost) {
    super(host.intervalMs);
    this.#host = host;
  }

  /** One pass over the jobs whose lease this worker holds: resolves to how many records it removed. */
  protected override async pass(): Promise<number> {
    const { link, owner, events, handlers, retain, intervalMs } = this.#host;
    let removed = 0;
    try {
      for (const { job } of handlers.values()) {
        if (!(await link.store.lease(`pruner:${job.name}`, owner, intervalMs * 3))) continue;
        for (const status of FINISHED_STATUSES) {
          const rule = job.retain?.[status] ?? retain?.[status] ?? DEFAULT_RETAIN[status];
          if (rule.ageMs === undefined && rule.count === undefined) continue;
          const request: { -readonly [K in keyof PruneRequest]: PruneRequest[K] } = { name: job.name, status, limit: BATCH };
          if (rule.ageMs !== undefined) request.olderThanMs = rule.ageMs;
          if (rule.count !== undefined) request.keep = rule.count;
          for (;;) {
            const n = await link.store.prune(request);
            removed += n;
            if (n < BATCH) break;
          }
        }
      }
      return removed;
    } catch (error) {
      events.emit("error", { error: serializeError(error) });
      return removed;
    }
  }
}
