#!/usr/bin/env bash
# Starts the brokers the adapter suites need if they are down (never restarts one that runs), from
# the binaries on this machine: Debian's packages in CI, Homebrew or any other install elsewhere.
# Where a binary is missing, it says so and points at compose.yaml (`docker compose up -d`), which
# runs the same brokers on the same ports on any OS. The in-memory broker needs none of them.
set -euo pipefail

up() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() { # host port name
  for _ in $(seq 1 100); do
    if up "$1" "$2"; then echo "$3 is up on $1:$2"; return 0; fi
    sleep 0.2
  done
  echo "$3 did not come up on $1:$2" >&2
  return 1
}

# The first of the given paths or commands that exists and runs, else nothing.
find_bin() {
  for candidate in "$@"; do
    if [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
    if command -v "$candidate" >/dev/null 2>&1; then command -v "$candidate"; return 0; fi
  done
}

missing=()

if ! up 127.0.0.1 6379; then
  bin="$(find_bin redis-server)"
  if [ -n "$bin" ]; then "$bin" --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no >/dev/null
  else missing+=(redis); fi
fi

if ! up 127.0.0.1 5672; then
  bin="$(find_bin rabbitmq-server /usr/sbin/rabbitmq-server /usr/local/sbin/rabbitmq-server /opt/homebrew/sbin/rabbitmq-server)"
  if [ -n "$bin" ]; then "$bin" -detached
  else missing+=(rabbitmq); fi
fi

if ! up 127.0.0.1 4222; then
  bin="$(find_bin nats-server /usr/sbin/nats-server)"
  store="${JOBS_NATS_STORE_DIR:-/var/lib/nats-server}"
  if [ -n "$bin" ] && [ ! -w "$(dirname "$store")" ] && [ ! -w "$store" ]; then store="${TMPDIR:-/tmp}/jobs-nats-store"; fi
  if [ -n "$bin" ] && command -v start-stop-daemon >/dev/null 2>&1; then
    start-stop-daemon --start --oknodo --background --exec "$bin" -- -a 127.0.0.1 -p 4222 -js -sd "$store"
  elif [ -n "$bin" ]; then
    # Off Debian (no start-stop-daemon): detached with nohup, its log beside the store.
    mkdir -p "$store"
    nohup "$bin" -a 127.0.0.1 -p 4222 -js -sd "$store" >"$store.log" 2>&1 &
  else missing+=(nats); fi
fi

if ! up 127.0.0.1 5432; then
  # Debian's cluster wrapper when there is one; otherwise whatever pg_ctl finds in PGDATA.
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
  elif command -v pg_ctl >/dev/null 2>&1 && [ -n "${PGDATA:-}" ]; then
    pg_ctl -D "$PGDATA" -w start >/dev/null
  else missing+=(postgres); fi
fi

for spec in "6379 redis" "5672 rabbitmq" "4222 nats" "5432 postgres"; do
  set -- $spec
  if up 127.0.0.1 "$1"; then echo "$2 is up on 127.0.0.1:$1"
  elif [[ " ${missing[*]-} " == *" $2 "* ]]; then echo "warning: $2 is not running and no $2 binary was found (only its adapter suite needs it)"
  else wait_port 127.0.0.1 "$1" "$2" || echo "warning: $2 unavailable (only its adapter suite needs it)"; fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "To run the missing brokers in containers on the same ports: docker compose up -d ${missing[*]}"
fi
