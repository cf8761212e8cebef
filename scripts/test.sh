#!/usr/bin/env bash
# Runs the whole test suite: Rust unit, doc and end-to-end tests, then the Python client tests.
# Works on a fresh machine: it creates the Python environment it needs (pinned, from PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/osprey/target}"
venv="${OSPREY_VENV:-$HOME/.cache/osprey/venv}"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt

# The end-to-end tests start the real `osprey` binary; build it with the workspace.
cargo build --workspace --locked
# The catalog tests run against SQLite and against a throwaway PostgreSQL server; the S3 tests
# start moto's S3-compatible server from the virtualenv.
export OSPREY_TEST_MOTO_SERVER="$venv/bin/moto_server"
# The SQL corpus runs through the Trino door with the `trino` client from the virtualenv.
export OSPREY_TEST_PYTHON="$venv/bin/python"
scripts/with-postgres.sh cargo test --workspace --locked
OSPREY_BIN="$CARGO_TARGET_DIR/debug/osprey" "$venv/bin/python" -m pytest -q tests/python

# The Iceberg interoperability tests use pyiceberg, whose SQL catalog needs SQLAlchemy 2 while
# the client tests pin 1.4 (for flightsql-dbapi): they get a pinned venv of their own.
iceberg_venv="${OSPREY_ICEBERG_VENV:-$HOME/.cache/osprey/venv-iceberg}"
if [ ! -x "$iceberg_venv/bin/python" ]; then
  python3 -m venv "$iceberg_venv"
fi
"$iceberg_venv/bin/pip" install --quiet --disable-pip-version-check -r tests/iceberg/requirements.txt
# Attached SQL catalogs are tested on SQLite and on a throwaway PostgreSQL server.
OSPREY_BIN="$CARGO_TARGET_DIR/debug/osprey" scripts/with-postgres.sh \
  "$iceberg_venv/bin/python" -m pytest -q tests/iceberg

# Keep the benchmark harness from rotting: a seconds-long run (TPC-H SF0.01, two queries,
# Osprey checked against DataFusion, short latency and exchange runs). Figures are not judged.
smoke_dir="$(mktemp -d)"
trap 'rm -rf "$smoke_dir"' EXIT
"$CARGO_TARGET_DIR/debug/osprey-benches" smoke --data-dir "$smoke_dir/data" --out-dir "$smoke_dir/out"
