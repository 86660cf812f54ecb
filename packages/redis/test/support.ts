/** Arguments of a private redis-server for tests: its own port and directory, no RDB snapshots, then `extra`. */
export const redisServerArgs = (port: number, dir: string, extra: readonly string[]): string[] => [
  "--port",
  String(port),
  "--bind",
  "127.0.0.1",
  "--dir",
  dir,
  "--save",
  "",
  ...extra,
];
