/**
 * RabbitMQ's `consumer_timeout`: the value consumers rotate their channels against, the warning
 * for a job timeout above it, and the server's own value once it states it.
 */
import type { BrokerEventMap, Emitter } from "@jobs/core/adapter";

/** The `consumer_timeout` one broker instance works with, and the warnings about it. */
export class ConsumerTimeout {
  readonly #events: Emitter<BrokerEventMap>;
  /** Priority "none": core routes each level to `<queue>__p<level>`, one logical queue. */
  readonly #perLevelQueues: boolean;
  /** The server's `consumer_timeout` in ms: as configured, or as RabbitMQ stated it when it closed a channel for it. */
  #ms: number;
  /** Queues (logical names) already warned about a job timeout above `consumer_timeout`. */
  readonly #warned = new Set<string>();
  /** Whether the configured `consumerTimeout` was already reported as different from the server's. */
  #learned = false;

  constructor(events: Emitter<BrokerEventMap>, configuredMs: number, perLevelQueues: boolean) {
    this.#events = events;
    this.#ms = configuredMs;
    this.#perLevelQueues = perLevelQueues;
  }

  /** Move new deliveries to a fresh channel once the oldest one is this old; 0: never. */
  get rotateAfterMs(): number {
    return this.#ms / 10;
  }

  /**
   * Warns (once per queue) when a job registered for it may run past `consumer_timeout`: RabbitMQ
   * would then close its channel and redeliver it while it still runs, so it would run twice.
   * Channel rotation spares the jobs beside it, not the long job itself.
   */
  checkJobTimeout(queue: string, jobTimeoutMs: number | undefined): void {
    const limit = this.#ms;
    if (jobTimeoutMs === undefined || limit <= 0 || !(jobTimeoutMs > limit)) return;
    // One warning per logical queue, not per priority level (`<queue>__p<level>` with priority "none").
    const logical = this.#perLevelQueues ? queue.replace(/__p[0-4]$/, "") : queue;
    if (this.#warned.has(logical)) return;
    this.#warned.add(logical);
    this.#events.emit("config-warning", {
      code: "JOBS_RABBITMQ_JOB_TIMEOUT",
      message: `[jobs] [rabbitmq] queue "${logical}": a job timeout of ${jobTimeoutMs} ms exceeds RabbitMQ's consumer_timeout (${limit} ms, the consumerTimeout option): a job still running by then is redelivered when RabbitMQ closes its channel, and runs twice. Lower the job's timeout, or raise consumer_timeout in rabbitmq.conf and set consumerTimeout to match`,
    });
  }

  /**
   * A consumer's channel failed. If RabbitMQ closed it for `consumer_timeout` and said its value:
   * warn once if it is not the configured one, and use it from now on (rotation, job timeout checks).
   */
  channelError(error: Error): void {
    const stated = /timed out\. Timeout value used: (\d+) ms/.exec(String(error?.message))?.[1];
    if (stated === undefined) return;
    const serverMs = Number(stated);
    if (serverMs === this.#ms) return;
    const configured = this.#ms;
    this.#ms = serverMs;
    if (this.#learned) return;
    this.#learned = true;
    this.#warned.clear();
    this.#events.emit("config-warning", {
      code: "JOBS_RABBITMQ_CONSUMER_TIMEOUT",
      message: `[jobs] [rabbitmq] RabbitMQ closed a consumer's channel after its consumer_timeout of ${serverMs} ms, but the consumerTimeout option says ${configured === 0 ? "it has none" : `${configured} ms`}: set consumerTimeout to ${serverMs} ms (the adapter uses the server's value from now on)`,
    });
  }
}
