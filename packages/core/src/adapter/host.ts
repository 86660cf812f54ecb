/**
 * True when `host` names this machine's loopback interface: `localhost`, an address in
 * 127.0.0.0/8, or `::1` (with or without brackets). Adapters emit `insecure-connection` when they
 * reach any other host without TLS or credentials.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === "localhost" || h === "::1" || h === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
