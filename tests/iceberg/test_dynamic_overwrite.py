"""INSERT OVERWRITE on partitioned Iceberg tables: static (the default) replaces every row;
with `SET osprey.partition_overwrite_mode = 'dynamic'` (Spark's dynamic mode) only the
partitions the new rows fall in are replaced. pyiceberg reads the result."""

import pytest

from conftest import attached_sql_catalog, column, connect, error_of, run


@pytest.fixture(scope="module")
def lake(osprey, tmp_path_factory):
    """A pyiceberg SqlCatalog `overwrites` on SQLite, attached to Osprey as `ow`."""
    root = tmp_path_factory.mktemp("iceberg-overwrite")
    with attached_sql_catalog(osprey, root, "overwrites", "ow") as catalog:
        yield catalog


def session(uri, *statements):
    """Runs STATEMENTS in one session."""
    with connect(uri) as conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
            cur.fetchall()


def rows(lake, name):
    table = lake.load_table(f"db.{name}").scan().to_arrow()
    return sorted(zip(column(table, "region"), column(table, "id")))


def test_dynamic_overwrite_replaces_only_the_partitions_written(osprey, lake):
    run(osprey, "CREATE TABLE ow.db.sales (id BIGINT, region VARCHAR) "
                "WITH (partitioning = ARRAY['region'])")
    run(osprey, "INSERT INTO ow.db.sales VALUES (1, 'a'), (2, 'b'), (3, 'b'), (4, 'c')")
    session(osprey, "SET osprey.partition_overwrite_mode = 'dynamic'",
            "INSERT OVERWRITE ow.db.sales VALUES (20, 'b'), (50, 'd')")
    assert rows(lake, "sales") == [("a", 1), ("b", 20), ("c", 4), ("d", 50)]
    summary = lake.load_table("db.sales").current_snapshot().summary
    assert summary["operation"].value == "overwrite"
    assert summary["deleted-data-files"] == "1" and summary["deleted-records"] == "2"
    ours = run(osprey, "SELECT region, id FROM ow.db.sales ORDER BY region").to_pylist()
    assert [(r["region"], r["id"]) for r in ours] == rows(lake, "sales")

    # Nothing written replaces nothing.
    snapshot = lake.load_table("db.sales").current_snapshot().snapshot_id
    session(osprey, "SET osprey.partition_overwrite_mode = 'dynamic'",
            "INSERT OVERWRITE ow.db.sales SELECT * FROM ow.db.sales WHERE id < 0")
    assert lake.load_table("db.sales").current_snapshot().snapshot_id == snapshot

    # Static, the default (and after RESET): every row goes.
    session(osprey, "SET osprey.partition_overwrite_mode = 'dynamic'",
            "RESET osprey.partition_overwrite_mode",
            "INSERT OVERWRITE ow.db.sales VALUES (7, 'z')")
    assert rows(lake, "sales") == [("z", 7)]


def test_an_unpartitioned_table_is_replaced_whole(osprey, lake):
    run(osprey, "CREATE TABLE ow.db.flat (id BIGINT, region VARCHAR)")
    run(osprey, "INSERT INTO ow.db.flat VALUES (1, 'a'), (2, 'b')")
    session(osprey, "SET osprey.partition_overwrite_mode = 'dynamic'",
            "INSERT OVERWRITE ow.db.flat VALUES (3, 'b')")
    assert rows(lake, "flat") == [("b", 3)]


def test_bad_settings_say_what_is_known(osprey):
    assert "static or dynamic" in error_of(osprey, "SET osprey.partition_overwrite_mode = 'some'")
    assert "osprey.partition_overwrite_mode" in error_of(osprey, "SET osprey.nope = 'x'")
