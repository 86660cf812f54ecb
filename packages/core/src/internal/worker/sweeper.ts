/**
 * The sweeper (docs/concepts/records.md, rule 1): publishes the records whose current generation
 * was written but not published (a producer that died between its record and its publish, an
 * enqueue that ended outcome-unknown, a retry whose broker call failed). One worker at a time
 * sweeps, through a store lease; a second sweeper would only publish duplicates, which claims drop.
 */
import type { Broker } from "../../broker.js";
import type { Codec } from "../../codec.js";
import { serializeError } from "../../errors.js";
import type { Emitter, WorkerEventMap } from "../../events.js";
import { messageOf, type StoreLink } from "../../records.js";
import { Periodic } from "./periodic.js";

/** What the sweeper needs from the worker. */
export interface SweeperHost {
  readonly link: StoreLink;
  readonly broker: Broker;
  /** Signs what the sweeper publishes. */
  readonly codec: Codec;
  /** The worker's id: the lease's owner. */
  readonly owner: string;
  readonly events: Emitter<WorkerEventMap>;
  /** Time between sweeps, ms. @default 5000 */
  readonly intervalMs?: number;
  /** A record unpublished for this long is swept (a live producer publishes well within it), ms. @default 10000 */
  readonly graceMs?: number;
}

/** Records published per sweep at most. */
const BATCH = 100;

export class Sweeper extends Periodic {
  readonly #host: SweeperHost;
  readonly #intervalMs: number;
  readonly #graceMs: number;

  constructor(host: SweeperHost) {
    const intervalMs = host.intervalMs ?? 5_000;
    super(intervalMs);
    this.#host = host;
    this.#intervalMs = intervalMs;
    this.#graceMs = host.graceMs ?? 10_000;
  }

  /** One sweep, if this worker holds the lease: resolves to how many records it published. */
  protected override async pass(): Promise<number> {
    const { link, broker, owner, events, codec } = this.#host;
    try {
      if (!(await link.store.lease("sweeper", owner, this.#intervalMs * 3))) return 0;
      const due = await link.store.unpublished(this.#graceMs, BATCH);
      let published = 0;
      const now = Date.now();
      for (const job of due) {
        const { physical, message } = messageOf(job, broker.capabilities, now, codec);
        const [outcome] = await broker.publish(physical, [message]);
        if (outcome?.ok) {
          await link.store.markPublished([{ id: job.id, gen: job.gen }]);
          published++;
        } else if (outcome !== undefined) {
          events.emit("error", { error: serializeError(outcome.error) });
        }
      }
      return published;
    } catch (error) {
      events.emit("error", { error: serializeError(error) });
      return 0;
    }
  }
}
