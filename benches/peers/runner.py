"""Runs benchmark queries in a Python-hosted peer engine (DuckDB, or Spark local) for
`osprey-benches`.

The harness starts one runner per engine and speaks JSON lines over stdin/stdout:

    {"op": "hello"}                                   -> {"ok": true, "version": "..."}
    {"op": "register", "tables": {"name": "dir"}}     -> {"ok": true}
    {"op": "run", "statements": ["..."], "result": "/path/or/null"}
        -> {"ok": true, "ms": 12.3, "rows": 4}  or  {"ok": false, "error": "..."}

`ms` covers running every statement and fetching the last result as Arrow, timed inside this
process so that the pipe protocol is not counted. When `result` is a path, the last result is
written there as an Arrow IPC file (after timing) for the harness to check answers.

Usage: python runner.py duckdb|spark THREADS
"""

import json
import re
import sys
import time


QUERY_KEYWORDS = ("select", "with", "(", "values", "from")


def is_query(statement):
    """Whether a statement returns rows (the others, like q15's CREATE/DROP VIEW, do not;
    DuckDB answers those with a one-column "Success" relation that is not a result)."""
    return statement.lstrip().lower().startswith(QUERY_KEYWORDS)


def reply(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class DuckDbPeer:
    def __init__(self, threads):
        import duckdb

        self.version = "DuckDB " + duckdb.__version__
        self.con = duckdb.connect()
        self.con.execute(f"SET threads = {int(threads)}")

    def register(self, name, directory):
        # A view over the files, as a user of DuckDB on a data lake would write it.
        path = directory.rstrip("/") + "/*.parquet"
        self.con.execute(
            f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet('{path}')"
        )

    def run(self, statements):
        table = None
        for statement in statements:
            if is_query(statement):
                table = self.con.sql(statement).to_arrow_table()
            else:
                self.con.execute(statement)
        return table


class SparkPeer:
    def __init__(self, threads):
        from pyspark.sql import SparkSession
        import pyspark

        self.version = "Spark " + pyspark.__version__
        self.spark = (
            SparkSession.builder.master(f"local[{int(threads)}]")
            .appName("osprey-benches")
            .config("spark.sql.shuffle.partitions", str(int(threads)))
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.memory", "8g")
            .getOrCreate()
        )
        self.spark.sparkContext.setLogLevel("ERROR")

    def register(self, name, directory):
        self.spark.read.parquet(directory).createOrReplaceTempView(name)

    def run(self, statements):
        table = None
        for statement in statements:
            # The tables are temporary views, and Spark refuses a persistent view over those.
            statement = re.sub(
                r"^\s*create\s+view", "CREATE TEMPORARY VIEW", statement, flags=re.IGNORECASE
            )
            frame = self.spark.sql(statement)
            if is_query(statement):
                table = frame.toArrow()
        return table


def write_ipc(table, path):
    import pyarrow as pa

    with pa.OSFile(path, "wb") as sink:
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)


def main():
    engine, threads = sys.argv[1], sys.argv[2]
    try:
        peer = {"duckdb": DuckDbPeer, "spark": SparkPeer}[engine](threads)
    except ImportError as error:
        reply({"ok": False, "error": f"not installed: {error}"})
        return
    except Exception as error:  # noqa: BLE001 - reported to the harness, which reports it
        reply({"ok": False, "error": f"cannot start: {error}"})
        return
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        try:
            if op == "hello":
                reply({"ok": True, "version": peer.version})
            elif op == "register":
                for name, directory in request["tables"].items():
                    peer.register(name, directory)
                reply({"ok": True})
            elif op == "run":
                started = time.perf_counter()
                table = peer.run(request["statements"])
                elapsed_ms = (time.perf_counter() - started) * 1000.0
                rows = 0 if table is None else table.num_rows
                if request.get("result") and table is not None:
                    write_ipc(table, request["result"])
                reply({"ok": True, "ms": elapsed_ms, "rows": rows})
            else:
                reply({"ok": False, "error": f"unknown op {op}"})
        except Exception as error:  # noqa: BLE001 - one failed query must not end the run
            reply({"ok": False, "error": str(error).splitlines()[0][:500]})


if __name__ == "__main__":
    main()
