"""CREATE OR REPLACE TABLE [AS SELECT] on the Iceberg tables of attached catalogs: the table
keeps its identity and history; the new schema (fresh field ids), partitioning and rows
become current in one commit. pyiceberg reads the new table, and the old snapshot still."""

import pytest

from conftest import attached_sql_catalog, column, error_of, run


@pytest.fixture(scope="module")
def lake(osprey, tmp_path_factory):
    """A pyiceberg SqlCatalog `replaced` on SQLite, attached to Osprey as `rp`."""
    root = tmp_path_factory.mktemp("iceberg-replace")
    with attached_sql_catalog(osprey, root, "replaced", "rp") as catalog:
        yield catalog


def test_create_or_replace_keeps_history(osprey, lake):
    run(osprey, "CREATE TABLE rp.db.t (id BIGINT, v VARCHAR) WITH (partitioning = ARRAY['v'])")
    run(osprey, "INSERT INTO rp.db.t VALUES (1, 'a'), (2, 'b')")
    before = lake.load_table("db.t")
    old_snapshot = before.current_snapshot().snapshot_id
    uuid = before.metadata.table_uuid

    run(osprey, "CREATE OR REPLACE TABLE rp.db.t WITH (partitioning = ARRAY['bucket(id, 2)']) AS "
                "SELECT id * 10 AS id, 'new' AS w FROM (SELECT unnest(range(1, 5)) AS id)")
    table = lake.load_table("db.t")
    assert table.metadata.table_uuid == uuid
    # Fresh field ids after the table's last; the new spec is the default.
    assert [(f.field_id, f.name) for f in table.schema().fields] == [(3, "id"), (4, "w")]
    assert [str(f.transform) for f in table.spec().fields] == ["bucket[2]"]
    assert sorted(column(table.scan().to_arrow(), "id")) == [10, 20, 30, 40]
    assert sorted(column(run(osprey, "SELECT id FROM rp.db.t"), "id")) == [10, 20, 30, 40]
    # One commit: one new snapshot, which replaced every file; the old one still reads.
    assert len(table.snapshots()) == 2
    assert table.current_snapshot().parent_snapshot_id == old_snapshot
    assert sorted(column(table.scan(snapshot_id=old_snapshot).to_arrow(), "id")) == [1, 2]
    old = run(osprey, f"SELECT id, v FROM rp.db.t FOR VERSION AS OF {old_snapshot} ORDER BY id")
    assert old.to_pylist() == [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]

    # Without AS: the new columns, no rows.
    run(osprey, "CREATE OR REPLACE TABLE rp.db.t (a INT)")
    table = lake.load_table("db.t")
    assert [f.name for f in table.schema().fields] == ["a"]
    assert len(table.scan().to_arrow()) == 0
    assert column(run(osprey, "SELECT count(*) AS n FROM rp.db.t"), "n") == [0]

    # A table that does not exist is created.
    run(osprey, "CREATE OR REPLACE TABLE rp.db.fresh AS SELECT 1 AS one")
    assert column(lake.load_table("db.fresh").scan().to_arrow(), "one") == [1]

    assert "keeps its format version" in error_of(
        osprey, "CREATE OR REPLACE TABLE rp.db.t (a INT) WITH (format_version = 3)")


def test_create_or_replace_through_a_rest_catalog(osprey, tmp_path):
    """Through REST, the new schema and spec travel as updates with the snapshot; pyiceberg's
    commit code applies them."""
    import rest_adapter
    from pyiceberg.catalog.rest import RestCatalog

    db, warehouse = f"sqlite:///{tmp_path}/rest.db", f"file://{tmp_path}/warehouse"
    (tmp_path / "warehouse").mkdir()
    server, base = rest_adapter.serve(db, "replacing", warehouse)
    try:
        client = RestCatalog("client", uri=base, warehouse=warehouse)
        client.create_namespace("db")
        run(osprey, f"CREATE CATALOG rp_rest USING iceberg WITH (type = 'rest', uri = '{base}')")
        run(osprey, "CREATE TABLE rp_rest.db.t AS SELECT CAST(1 AS BIGINT) AS id")
        run(osprey, "CREATE OR REPLACE TABLE rp_rest.db.t WITH (partitioning = ARRAY['k']) AS "
                    "SELECT 'x' AS k, CAST(2.5 AS DOUBLE) AS d")
        table = client.load_table("db.t")
        assert [(f.field_id, f.name) for f in table.schema().fields] == [(2, "k"), (3, "d")]
        assert [f.name for f in table.spec().fields] == ["k"]
        assert table.scan().to_arrow().to_pylist() == [{"k": "x", "d": 2.5}]
        assert len(table.snapshots()) == 2
        run(osprey, "DROP CATALOG rp_rest")
    finally:
        server.shutdown()
