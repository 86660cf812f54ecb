/**
 * The monotonic clock, read through a reference taken once. In Node.js the global `performance` is
 * an accessor that loads its module lazily, so every `performance.now()` also pays a getter call;
 * the hot paths (a few reads per job) use `clock.now()` instead.
 */
export const clock: { now(): number } = performance;
