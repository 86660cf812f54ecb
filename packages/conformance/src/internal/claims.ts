/**
 * A view of a case's job store that lets the case see the worker's claims and hold some back. It
 * passes every call to the real store: it is not a mock, only a window on what the worker asked
 * and what the store answered (a finished job's message is acked unrun, which no event reports).
 */
import type { ClaimOutcome, ClaimRequest, JobStore } from "@jobs/core/adapter";
import { waitFor } from "@jobs/core/testing";

/** One claim the worker made, with the store's answer. */
export interface SeenClaim {
  readonly request: ClaimRequest;
  readonly outcome: ClaimOutcome;
}

/** Watches (and can hold back) the claims a worker makes through `view`. */
export class ClaimWatch {
  /** Every claim answered so far, in order. */
  readonly seen: SeenClaim[] = [];
  /** The store to give the worker: the case's store, with claims watched. */
  readonly view: JobStore;
  readonly #holds = new Map<string, Promise<void>>();

  constructor(store: JobStore) {
    const claim = async (requests: readonly ClaimRequest[]): Promise<ClaimOutcome[]> => {
      await Promise.all(requests.map((r) => this.#holds.get(r.id)));
      const outcomes = await store.claim(requests);
      requests.forEach((request, i) => {
        this.seen.push({ request, outcome: outcomes[i] as ClaimOutcome });
      });
      return outcomes;
    };
    this.view = new Proxy(store, {
      get(target, key) {
        if (key === "claim") return claim;
        // Only the contract's members: a broker that could claim for the store itself (fusion) must not see past the view.
        if (typeof key === "symbol") return undefined;
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }

  /** Claims of job `id` wait until the returned function is called. */
  hold(id: string): () => void {
    let release: () => void = () => {};
    this.#holds.set(
      id,
      new Promise<void>((resolve) => {
        release = resolve;
      }),
    );
    return () => {
      this.#holds.delete(id);
      release();
    };
  }

  /** The claims of job `id` so far. */
  of(id: string): SeenClaim[] {
    return this.seen.filter((c) => c.request.id === id);
  }

  /** Waits until job `id` was claimed `count` times; resolves with those claims. */
  async claimed(id: string, count: number, timeout: number): Promise<SeenClaim[]> {
    await waitFor(() => this.of(id).length >= count, { timeout, message: `expected ${count} claims of job ${id}` });
    return this.of(id);
  }
}
