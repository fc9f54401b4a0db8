#!/usr/bin/env bash
# Runs a command on another Node.js major version: bash scripts/with-node.sh 24 npx vitest run
#
# The version comes from the npm registry's `node` package, installed once into the tools
# folder ($STOREROOM_TOOLS, default .tools/ in the checkout). better-sqlite3 12 (the
# devDependency, built for the machine's Node) is swapped for better-sqlite3 13 for the
# duration of the command: 13 ships prebuilt Node-API binaries for Node >= 22, while 12 would
# need a rebuild per version and aborts at teardown on Node 24. Every other native module in
# the tree uses Node-API and loads on any version. The swap is undone on exit.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bash scripts/with-node.sh <major> <command...>" >&2
  exit 2
fi
major="$1"
shift
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="${STOREROOM_TOOLS:-$root/.tools}"
mkdir -p "$tools"

# One installer at a time per tools folder (CI steps and helpers may share it).
exec 9>"$tools/.lock"
flock 9
if [ ! -d "$tools/node$major/node_modules/node" ]; then
  mkdir -p "$tools/node$major"
  (cd "$tools/node$major" && npm i --no-audit --no-fund --silent "node@$major" >/dev/null)
fi
if [ ! -d "$tools/better-sqlite3-13/node_modules/better-sqlite3" ]; then
  mkdir -p "$tools/better-sqlite3-13"
  (cd "$tools/better-sqlite3-13" && npm i --no-audit --no-fund --silent "better-sqlite3@^13" >/dev/null)
fi
flock -u 9
bindir="$(dirname "$(find "$tools/node$major/node_modules/node/node_modules" -path '*/bin/node' -type f | head -1)")"
[ -x "$bindir/node" ] || { echo "no node binary under $tools/node$major" >&2; exit 1; }

modules="$root/node_modules"
swapped=""
if [ "$major" -ge 22 ] && [ -d "$modules/better-sqlite3" ] && [ ! -L "$modules/better-sqlite3" ]; then
  mv "$modules/better-sqlite3" "$modules/.better-sqlite3-machine"
  ln -s "$tools/better-sqlite3-13/node_modules/better-sqlite3" "$modules/better-sqlite3"
  swapped=1
fi
restore() {
  if [ -n "$swapped" ]; then
    rm -f "$modules/better-sqlite3"
    mv "$modules/.better-sqlite3-machine" "$modules/better-sqlite3"
  fi
}
trap restore EXIT
PATH="$bindir:$PATH" "$@"
