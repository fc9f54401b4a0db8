#!/usr/bin/env bash
# Checks the package as it is published (run after `npm run build`):
#   1. packs it and lints the tarball: publint (exports, files) and @arethetypeswrong/cli
#      (types resolve for ES module consumers, the only kind this package has);
#   2. installs the tarball alone into an empty folder (a memory-only user: no optional peer)
#      and runs scripts/package-smoke.mjs there: `storeroom --version`, an import of every
#      subpath, the memory kv store, node:sqlite where this Node has it, and the typed error
#      naming the package for better-sqlite3, pg, the AWS SDK, ws and the server;
#   3. adds the server's optional peers (fastify, ws, prom-client) and runs `storeroom serve
#      --port 0` to its first /healthz. That needs a SQLite engine without a compiler, so it
#      runs where node:sqlite is the default (Node 24.15+), and is reported as not run elsewhere.
# Packages come from the npm registry (through the npm cache when warm).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$root"
[ -f dist/index.js ] || { echo "dist/ is missing: run npm run build first" >&2; exit 1; }

tarball="$work/$(npm pack --silent --pack-destination "$work" | tail -1)"
echo "== publint $(basename "$tarball")"
npx --no-install publint run "$tarball" --strict
echo "== arethetypeswrong (ES module consumers)"
if npx --no-install attw "$tarball" --profile esm-only --format ascii --no-emoji >"$work/attw.txt"; then
  echo "No problems found ($(grep -c '^"storeroom' "$work/attw.txt") entrypoints)"
else
  cat "$work/attw.txt"
  exit 1
fi

install() {
  local dir="$work/$1"
  shift
  mkdir -p "$dir"
  printf '{"name":"storeroom-smoke","private":true,"type":"module"}\n' >"$dir/package.json"
  (cd "$dir" && npm i --no-audit --no-fund --silent --prefer-offline "$@")
  cp "$root/scripts/package-smoke.mjs" "$dir/"
}

echo "== memory-only install: npm i storeroom"
install light "$tarball"
version="$(cd "$work/light" && node node_modules/.bin/storeroom --version)"
expected="$(node -p 'require("./package.json").version')"
[ "$version" = "$expected" ] || { echo "storeroom --version printed '$version', expected $expected" >&2; exit 1; }
echo "storeroom --version: $version"
(cd "$work/light" && node package-smoke.mjs light)

if node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>25||(a===25&&b>=7)||(a===24&&b>=15)?0:1)'; then
  echo "== server install: npm i storeroom fastify ws prom-client"
  install server "$tarball" fastify ws prom-client
  (cd "$work/server" && node package-smoke.mjs server)
else
  echo "== server install: not run on Node $(node --version) (no SQLite engine without a compiler here; CI runs it on Node 24 and 26)"
fi
