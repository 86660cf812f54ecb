#!/usr/bin/env bash
# Smoke run of core + memory + Redis on Bun or Deno, installed from the npm registry (their
# platform packages carry the binaries) and cached like scripts/with-node.sh does:
#
#   scripts/runtime-smoke.sh bun          # Bun 1.4.5
#   scripts/runtime-smoke.sh deno 2.9.6   # another release
#
# Runs, from the TypeScript sources (the "@jobs/source" export condition, no build needed): the
# README's quick start on the in-memory broker, the example scenario on the in-memory broker and
# the same scenario on Redis at JOBS_REDIS_URL (default redis://127.0.0.1:6379), each with
# --smoke, which checks the outcome and exits non-zero if it is off. Needs `pnpm install` first.
# Linux x64 only (the glibc builds).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]; then
  echo "$0: the npm registry packages used here are Linux x64 builds" >&2
  exit 2
fi

runtime=${1:-}
case "$runtime" in
  bun)
    version=${2:-1.4.5}
    exe="$(bash scripts/registry-binary.sh @oven/bun-linux-x64 "$version")/bin/bun"
    run() { "$exe" --conditions=@jobs/source "$@"; }
    ;;
  deno)
    version=${2:-2.9.6}
    exe="$(bash scripts/registry-binary.sh @deno/linux-x64-glibc "$version")/deno"
    # The pnpm-installed node_modules as they are; ".js" imports of ".ts" files (as tsc and tsx
    # resolve them) need --sloppy-imports.
    export DENO_DIR="${DENO_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/jobs-node/deno-dir}"
    run() { "$exe" run --allow-all --no-config --node-modules-dir=manual --sloppy-imports --conditions=@jobs/source "$@"; }
    ;;
  *)
    echo "usage: $0 bun|deno [version]" >&2
    exit 2
    ;;
esac

echo "$runtime: $("$exe" --version | head -1)"
export JOBS_REDIS_URL="${JOBS_REDIS_URL:-redis://127.0.0.1:6379}"

echo "-- quick start (memory)"
out=$(cd examples/memory && run src/quick-start.ts)
echo "$out"
[ "$out" = "$(printf 'scheduled\nmail to ada@example.com: Hi\nsent to ada@example.com')" ] || { echo "quick start: unexpected output" >&2; exit 1; }

echo "-- example scenario (memory)"
(cd examples/memory && run src/main.ts --smoke)

echo "-- example scenario (redis at JOBS_REDIS_URL)"
(cd examples/redis && run src/main.ts --smoke)

echo "$runtime smoke: ok"
