#!/usr/bin/env bash
# Starts the machine's PostgreSQL cluster when it is installed but not running, gives the
# postgres role a password for TCP logins on 127.0.0.1, and prints a connection URL.
# Used by .ci/run and by the test suite's global setup. Exits 3 when PostgreSQL is not installed.
set -euo pipefail
password="${STOREROOM_PG_PASSWORD:-postgres}"
port="${STOREROOM_PG_PORT:-5432}"
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  echo "PostgreSQL is not installed (no pg_lsclusters)" >&2
  exit 3
fi
cluster=$(pg_lsclusters --no-header | awk 'NR==1 {print $1" "$2" "$4}')
if [ -z "$cluster" ]; then
  echo "no PostgreSQL cluster found" >&2
  exit 3
fi
read -r version name status <<<"$cluster"
if [ "$status" != "online" ]; then
  pg_ctlcluster "$version" "$name" start >&2
fi
for _ in $(seq 1 50); do
  pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 0.2
done
as_postgres() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
as_postgres psql -q -p "$port" -d postgres -c "ALTER USER postgres PASSWORD '${password}'" >/dev/null
echo "postgres://postgres:${password}@127.0.0.1:${port}/postgres"
