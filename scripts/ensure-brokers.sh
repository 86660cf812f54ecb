#!/usr/bin/env bash
# Starts the machine's brokers if they are down (never restarts one that runs). Adapters' test
# suites need them; the in-memory broker needs none. Each check polls for readiness.
set -euo pipefail

wait_port() { # host port name
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then echo "$3 is up on $1:$2"; return 0; fi
    sleep 0.2
  done
  echo "$3 did not come up on $1:$2" >&2
  return 1
}

up() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

if ! up 127.0.0.1 6379 && command -v redis-server >/dev/null; then
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
fi
if ! up 127.0.0.1 5672 && command -v rabbitmq-server >/dev/null; then
  rabbitmq-server -detached
fi
if ! up 127.0.0.1 4222 && [ -x /usr/sbin/nats-server ]; then
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server
fi
for spec in "6379 redis" "5672 rabbitmq" "4222 nats"; do
  set -- $spec
  if up 127.0.0.1 "$1"; then echo "$2 is up on 127.0.0.1:$1"; else wait_port 127.0.0.1 "$1" "$2" || echo "warning: $2 unavailable (only adapter suites need it)"; fi
done
