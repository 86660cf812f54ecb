// @jobs/rabbitmq: work in progress; the adapter lands in slices (see the issue for @jobs/rabbitmq).
export {};
