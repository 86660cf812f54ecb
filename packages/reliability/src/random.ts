/** A seeded PRNG (mulberry32): every schedule of the suite comes from a printed seed, so a failing run can be replayed. */

/** The seed of this run: `JOBS_RELIABILITY_SEED` when replaying, else a fresh one. */
export function runSeed(): number {
  const given = process.env.JOBS_RELIABILITY_SEED;
  if (given !== undefined && given !== "") return Number(given) >>> 0;
  return (Math.random() * 2 ** 32) >>> 0;
}

/** A generator of floats in [0, 1) from `seed`. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform in [min, max). */
export const uniform = (rng: () => number, min: number, max: number): number => min + rng() * (max - min);
