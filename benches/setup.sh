#!/usr/bin/env bash
# Creates the Python environment the benchmarks use: DuckDB, pyarrow and tpcgen-cli (TPC-DS data),
# pinned. `--with-spark` adds PySpark (about 450 MB; Spark local needs the machine's Java 17).
# The venv lives at $OSPREY_BENCH_VENV (default ~/.cache/osprey/bench-venv), where
# osprey-benches looks for it.
set -euo pipefail
cd "$(dirname "$0")"
venv="${OSPREY_BENCH_VENV:-$HOME/.cache/osprey/bench-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r peers/requirements.txt
if [ "${1:-}" = "--with-spark" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check pyspark==4.3.0
fi
echo "Benchmark venv ready: $venv"
