"""MERGE INTO semantics, case by case, against DuckDB: each case runs on an Iceberg table in
Osprey (merge-on-read and copy-on-write) and on a plain table in DuckDB, from the same rows;
the rows affected, the table afterwards, or the refusal must be the same."""

import duckdb
import pytest

from conftest import attached_sql_catalog, connect, run

TARGET = "(1, 'a', 10), (2, 'b', 20), (3, 'c', 30), (CAST(NULL AS INT), 'n', 0)"

# (name, source query, MERGE clauses after ON).
CASES = [
    ("update and insert",
     "SELECT * FROM (VALUES (2, 'B', 'u'), (4, 'D', 'i')) AS s(id, v, op)",
     "t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v "
     "WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v, 0)"),
    ("the first matching clause wins",
     "SELECT * FROM (VALUES (1, 'A', 'd'), (2, 'zz', 'u'), (3, 'a', 'u')) AS s(id, v, op)",
     "t.id = s.id WHEN MATCHED AND s.op = 'd' THEN DELETE "
     "WHEN MATCHED AND s.v > t.v THEN UPDATE SET v = s.v, n = t.n + 1 "
     "WHEN MATCHED THEN UPDATE SET n = -1"),
    ("NULL keys never match",
     "SELECT * FROM (VALUES (CAST(NULL AS INT), 'N'), (3, 'C')) AS s(id, v)",
     "t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v "
     "WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v, 99)"),
    ("not matched by source deletes and updates",
     "SELECT * FROM (VALUES (1, 'x')) AS s(id, v)",
     "t.id = s.id WHEN NOT MATCHED BY SOURCE AND t.n >= 30 THEN DELETE "
     "WHEN NOT MATCHED BY SOURCE THEN UPDATE SET v = 'orphan'"),
    ("insert with a column list",
     "SELECT * FROM (VALUES (7, 'g'), (8, 'h')) AS s(id, v)",
     "t.id = s.id WHEN NOT MATCHED AND s.id = 7 THEN INSERT (id) VALUES (s.id) "
     "WHEN NOT MATCHED THEN INSERT (v, id) VALUES (s.v, s.id)"),
    ("a target row matched twice is refused",
     "SELECT * FROM (VALUES (2, 'B'), (2, 'BB')) AS s(id, v)",
     "t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v"),
    ("duplicate source rows that match nothing are both inserted",
     "SELECT * FROM (VALUES (5, 'e'), (5, 'e')) AS s(id, v)",
     "t.id = s.id WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v, 5)"),
    ("extra ON conditions",
     "SELECT * FROM (VALUES (1, 'A'), (2, CAST(NULL AS VARCHAR))) AS s(id, v)",
     "t.id = s.id AND s.v IS NOT NULL WHEN MATCHED THEN UPDATE SET v = s.v "
     "WHEN NOT MATCHED THEN INSERT VALUES (s.id + 100, s.v, 1)"),
    ("an aggregated source",
     "SELECT id % 2 + 1 AS id, count(*) AS c FROM (VALUES (1), (2), (3)) AS x(id) GROUP BY 1",
     "t.id = s.id WHEN MATCHED THEN UPDATE SET n = t.n + s.c"),
    ("nothing matches any clause",
     "SELECT * FROM (VALUES (1, 'a')) AS s(id, v)",
     "t.id = s.id WHEN MATCHED AND s.v = 'zzz' THEN DELETE"),
    ("expressions over both sides",
     "SELECT * FROM (VALUES (1, 'A', 5), (3, 'C', 7)) AS s(id, v, k)",
     "t.id = s.id WHEN MATCHED THEN UPDATE SET v = t.v || s.v, n = t.n * s.k + 1"),
]


@pytest.fixture(scope="module")
def lake(osprey, tmp_path_factory):
    """A pyiceberg SqlCatalog `merges` on SQLite, attached to Osprey as `mg`."""
    root = tmp_path_factory.mktemp("iceberg-merge-corpus")
    with attached_sql_catalog(osprey, root, "merges", "mg") as catalog:
        yield catalog


def outcome_in_duckdb(source, clauses):
    duck = duckdb.connect()
    duck.execute("CREATE TABLE t (id INT, v VARCHAR, n INT)")
    duck.execute(f"INSERT INTO t VALUES {TARGET}")
    try:
        affected = duck.execute(f"MERGE INTO t USING ({source}) AS s ON {clauses}").fetchall()[0][0]
    except duckdb.Error as err:
        return ("refused", "more than once" in str(err) or "more than one" in str(err))
    return affected, sorted(duck.execute("SELECT * FROM t").fetchall(), key=repr)


def outcome_in_osprey(osprey, table, mode, source, clauses):
    with connect(osprey) as conn, conn.cursor() as cur:
        for statement in (
            f"CREATE TABLE mg.db.{table} (id INT, v VARCHAR, n INT)",
            f"ALTER TABLE mg.db.{table} SET PROPERTIES \"write.merge.mode\" = '{mode}'",
            f"INSERT INTO mg.db.{table} VALUES {TARGET}",
        ):
            cur.execute(statement)
            cur.fetchall()
        try:
            cur.execute(f"MERGE INTO mg.db.{table} AS t USING ({source}) AS s ON {clauses}")
            affected = cur.fetchall()[0][0]
        except Exception as err:  # noqa: BLE001 - the refusal is compared below
            return ("refused", "more than one source row" in str(err))
        cur.execute(f"SELECT id, v, n FROM mg.db.{table}")
        return affected, sorted(cur.fetchall(), key=repr)


@pytest.mark.parametrize("mode", ["merge-on-read", "copy-on-write"])
@pytest.mark.parametrize("case", range(len(CASES)), ids=[c[0] for c in CASES])
def test_merge_matches_duckdb(osprey, lake, mode, case):
    name, source, clauses = CASES[case]
    table = f"case_{case}_{mode.split('-')[0]}"
    theirs = outcome_in_duckdb(source, clauses)
    ours = outcome_in_osprey(osprey, table, mode, source, clauses)
    assert ours == theirs, name
    if ours[0] != "refused":
        # pyiceberg reads what Osprey wrote.
        arrow = lake.load_table(f"db.{table}").scan().to_arrow()
        rows = sorted(zip(*(arrow.column(c).to_pylist() for c in ("id", "v", "n"))), key=repr)
        assert rows == ours[1]
