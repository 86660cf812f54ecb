// @jobs/redis: work in progress; the adapter lands in slices (see the issue for @jobs/redis).
export {};
