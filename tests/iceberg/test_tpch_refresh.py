"""TPC-H's refresh functions on Iceberg tables: RF1 (new orders and their line items) as
INSERT and RF2 (old orders and their line items removed) as DELETE, run by Osprey on tables it
created in an attached catalog, then the 22 queries. DuckDB runs the same statements on plain
tables of the same rows, and every answer must match.

The refresh sets are derived from the data rather than read from dbgen's update files (Osprey's
generator writes none): RF1 copies the orders whose key is 7 modulo 1000 (about 0.1%, as the
spec's SF x 1500) under new keys past every existing one, with their line items; RF2 deletes
the orders whose key is 3 modulo 1000 and their line items. The scale is 0.01 by default;
`OSPREY_TPCH_REFRESH_SCALE=1` runs SF1 (minutes, for a manual run)."""

import datetime
import decimal
import math
import os
import pathlib
import re
import time

import duckdb
import pytest

from conftest import client_conftest, connect

SCALE = os.environ.get("OSPREY_TPCH_REFRESH_SCALE", "0.01")
TABLES = ["nation", "region", "part", "supplier", "partsupp", "customer", "orders", "lineitem"]
# Partitioned, so the refresh writes and deletes across partitions.
PARTITIONING = {"orders": "ARRAY['bucket(o_orderkey, 4)']",
                "lineitem": "ARRAY['bucket(l_orderkey, 4)']"}
NEW_KEYS = 100_000_000

RF1 = [
    f"""INSERT INTO orders SELECT o_orderkey + {NEW_KEYS}, o_custkey, o_orderstatus,
        o_totalprice, o_orderdate, o_orderpriority, o_clerk, o_shippriority, o_comment
        FROM orders WHERE o_orderkey % 1000 = 7""",
    f"""INSERT INTO lineitem SELECT l_orderkey + {NEW_KEYS}, l_partkey, l_suppkey, l_linenumber,
        l_quantity, l_extendedprice, l_discount, l_tax, l_returnflag, l_linestatus,
        l_shipdate, l_commitdate, l_receiptdate, l_shipinstruct, l_shipmode, l_comment
        FROM lineitem WHERE l_orderkey % 1000 = 7""",
]
RF2 = [
    """DELETE FROM lineitem WHERE l_orderkey IN
        (SELECT o_orderkey FROM orders WHERE o_orderkey % 1000 = 3)""",
    "DELETE FROM orders WHERE o_orderkey % 1000 = 3",
]


def queries_dir() -> pathlib.Path:
    if "OSPREY_QUERIES_DIR" in os.environ:
        return pathlib.Path(os.environ["OSPREY_QUERIES_DIR"])
    return pathlib.Path(__file__).resolve().parents[3] / "shared" / "bench" / "queries"


def query_text(number: int) -> str:
    """Query NUMBER as one statement: q15's view becomes a WITH clause (views are Osprey's own
    catalog's, not an attached one's)."""
    text = (queries_dir() / "tpch" / f"q{number}.sql").read_text()
    statements = [s for s in (part.strip() for part in text.split(";")) if s]
    views, final = [], None
    for statement in statements:
        lines = "\n".join(l for l in statement.splitlines() if not l.strip().startswith("--"))
        view = re.match(r"(?is)create view (\w+)\s*(\([^)]*\))?\s*as\s*(.*)", lines)
        if view:
            views.append(f"{view.group(1)} {view.group(2) or ''} AS ({view.group(3)})")
        elif not re.match(r"(?is)\s*drop view", lines):
            final = lines
    return (f"WITH {', '.join(views)} " if views else "") + final


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """An `osprey local` with TPC-H at SCALE, and a SqlCatalog attached as `rf`."""
    root = tmp_path_factory.mktemp("tpch-refresh")
    (root / "warehouse").mkdir()
    from pyiceberg.catalog.sql import SqlCatalog
    catalog = SqlCatalog("refresh", uri=f"sqlite:///{root}/catalog.db",
                         warehouse=f"file://{root}/warehouse")
    catalog.create_namespace("db")
    with client_conftest.osprey_local("--executors", "2", "--tpch-scale", SCALE,
                                      "--data-dir", str(root / "osprey")) as uri:
        with connect(uri) as conn:
            cur = conn.cursor()
            try:
                cur.execute(f"CREATE CATALOG rf USING iceberg WITH (type = 'sql', "
                            f"uri = 'sqlite://{root}/catalog.db', catalog_name = 'refresh', "
                            f"warehouse = 'file://{root}/warehouse')")
                cur.fetchall()
                yield cur, catalog
            finally:
                cur.close()


def normalized(value):
    if isinstance(value, (decimal.Decimal, float)):
        return float(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return value


def sort_key(row):
    return tuple((0, round(v, 4)) if isinstance(v, float) else (1, str(v)) for v in row)


def same_answer(ours, theirs):
    """Rows equal order-insensitively, numbers within a relative 1e-4: engines type averages
    differently (DuckDB's avg of a DECIMAL(15,2) is a DOUBLE; DataFusion's a DECIMAL of scale 6,
    cut rather than rounded: 0.050094 for 0.0500947...)."""
    if len(ours) != len(theirs):
        return False
    for a, b in zip(sorted(ours, key=sort_key), sorted(theirs, key=sort_key)):
        for x, y in zip(a, b):
            if isinstance(x, float) and isinstance(y, float):
                if not math.isclose(x, y, rel_tol=1e-4, abs_tol=1e-9):
                    return False
            elif x != y:
                return False
    return True


def test_refresh_functions_then_the_22_queries_match_duckdb(cluster):
    cur, catalog = cluster
    duck = duckdb.connect()
    for table in TABLES:
        cur.execute(f"SELECT * FROM tpch.{table}")
        rows = cur.fetch_arrow_table()
        duck.register("incoming", rows)
        duck.execute(f"CREATE TABLE {table} AS SELECT * FROM incoming")
        duck.unregister("incoming")
        partitioning = PARTITIONING.get(table)
        with_clause = f" WITH (partitioning = {partitioning})" if partitioning else ""
        cur.execute(f"CREATE TABLE rf.db.{table}{with_clause} AS SELECT * FROM tpch.{table}")
        cur.fetchall()
    cur.execute("USE rf.db")
    cur.fetchall()

    timings = {}
    for name, statements in (("RF1", RF1), ("RF2", RF2)):
        timings[name] = 0.0
        for statement in statements:
            started = time.monotonic()
            cur.execute(statement)
            ours = cur.fetchall()[0][0]
            timings[name] += time.monotonic() - started
            theirs = duck.execute(statement).fetchall()[0][0]
            assert ours == theirs > 0, statement

    # pyiceberg reads the refreshed tables as Osprey does.
    for table in ("orders", "lineitem"):
        cur.execute(f"SELECT count(*) FROM {table}")
        assert cur.fetchall()[0][0] == len(catalog.load_table(f"db.{table}").scan().to_arrow())

    wrong = []
    timings["22 queries"] = 0.0
    for number in range(1, 23):
        sql = query_text(number)
        # Osprey's time only: the query and fetching its rows, once, cold.
        started = time.monotonic()
        cur.execute(sql)
        fetched = cur.fetchall()
        timings["22 queries"] += time.monotonic() - started
        ours = [tuple(normalized(v) for v in row) for row in fetched]
        theirs = [tuple(normalized(v) for v in row) for row in duck.execute(sql).fetchall()]
        if not same_answer(ours, theirs):
            wrong.append((number, sorted(ours, key=sort_key)[:2], sorted(theirs, key=sort_key)[:2]))
    print(f"TPC-H SF{SCALE} on Iceberg: " +
          ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items()))
    assert not wrong, wrong
