/** Reading capabilities from a throw-away instance, once per key (the broker suite's and the store suite's). */

/** What a probe opens: an instance with capabilities, closed once they are read. */
interface Probed<C> {
  readonly capabilities: C;
  close(): Promise<void>;
}

/**
 * Returns a function that, once per key, opens an instance with `open(key)`, copies its
 * capabilities and closes it; later calls with the same key share the first answer.
 */
export function capabilityProbe<K extends object, C extends object>(
  open: (key: K) => Probed<C> | Promise<Probed<C>>,
): (key: K) => Promise<C> {
  const probes = new WeakMap<K, Promise<C>>();
  return (key) => {
    let probe = probes.get(key);
    if (probe === undefined) {
      probe = (async () => {
        const instance = await open(key);
        try {
          return { ...instance.capabilities };
        } finally {
          await instance.close();
        }
      })();
      probes.set(key, probe);
    }
    return probe;
  };
}
