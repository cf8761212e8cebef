#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server on loopback, for the catalog tests:
# OSPREY_TEST_POSTGRES_URL names its `postgres` database. The server lives in a temporary
# directory and is stopped (and removed) when the command ends.
#
#   scripts/with-postgres.sh cargo test --test lakehouse
set -euo pipefail

bindir=""
for dir in /usr/lib/postgresql/*/bin; do
  [ -x "$dir/initdb" ] && bindir="$dir"
done
if [ -z "$bindir" ]; then
  echo "PostgreSQL server binaries not found (apt-get install postgresql); .ci/run installs them" >&2
  exit 1
fi

pgdir="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
run_as=()
if [ "$(id -u)" = "0" ]; then
  # PostgreSQL refuses to run as root.
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$pgdir"
  run_as=(runuser -u postgres --)
fi
cleanup() {
  "${run_as[@]}" "$bindir/pg_ctl" -D "$pgdir/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$pgdir"
}
trap cleanup EXIT

"${run_as[@]}" "$bindir/initdb" -D "$pgdir/data" -A trust -U postgres >/dev/null
"${run_as[@]}" "$bindir/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $pgdir -c fsync=off" start >/dev/null

export OSPREY_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
"$@"
