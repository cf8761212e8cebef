"""ALTER TABLE on the Iceberg tables of attached catalogs: schema evolution, partition
evolution and properties, committed as metadata changes. pyiceberg (the independent reader and
writer) reads every evolved table, and its answer equals Osprey's; through a REST catalog,
pyiceberg's own commit code applies Osprey's updates."""

import decimal

import pyarrow as pa
import pytest
from pyiceberg.types import DecimalType, IntegerType, LongType, StringType

from conftest import attached_sql_catalog, column, error_of, run


@pytest.fixture(scope="module")
def lake(osprey, tmp_path_factory):
    """A pyiceberg SqlCatalog `evolving` on SQLite, attached to Osprey as `ev`."""
    root = tmp_path_factory.mktemp("iceberg-alter")
    with attached_sql_catalog(osprey, root, "evolving", "ev") as catalog:
        yield catalog


def rows(table, order_by):
    """A pyarrow table's rows as sorted dicts."""
    return sorted(table.to_pylist(), key=lambda row: row[order_by])


def test_columns_evolve_and_pyiceberg_reads_every_version(osprey, lake):
    run(osprey, "CREATE TABLE ev.db.items (id INT NOT NULL, name VARCHAR, "
                "price DECIMAL(9, 2), legacy VARCHAR)")
    run(osprey, "INSERT INTO ev.db.items VALUES (1, 'one', 1.50, 'x'), (2, 'two', 2.25, 'y')")

    run(osprey, "ALTER TABLE ev.db.items ADD COLUMN note VARCHAR COMMENT 'free text'")
    run(osprey, "ALTER TABLE ev.db.items RENAME COLUMN name TO label")
    run(osprey, "ALTER TABLE ev.db.items ALTER COLUMN id SET DATA TYPE BIGINT")
    run(osprey, "ALTER TABLE ev.db.items ALTER COLUMN price SET DATA TYPE DECIMAL(18, 2)")
    run(osprey, "ALTER TABLE ev.db.items ALTER COLUMN id DROP NOT NULL")
    run(osprey, "ALTER TABLE ev.db.items DROP COLUMN legacy")
    run(osprey, "INSERT INTO ev.db.items VALUES (3, 'three', 12345678901.25, 'new')")

    table = lake.load_table("db.items")
    fields = {field.name: field for field in table.schema().fields}
    # Ids stay with their columns; the new column has a fresh one; the dropped one is gone.
    assert [(f.field_id, f.name) for f in table.schema().fields] == [
        (1, "id"), (2, "label"), (3, "price"), (5, "note")]
    assert fields["id"].field_type == LongType() and not fields["id"].required
    assert fields["price"].field_type == DecimalType(18, 2)
    assert fields["note"].field_type == StringType() and fields["note"].doc == "free text"
    # Each change was one metadata commit, and no change added a snapshot.
    assert len(table.schemas()) == 7
    assert len(table.snapshots()) == 2

    expected = [
        {"id": 1, "label": "one", "price": decimal.Decimal("1.50"), "note": None},
        {"id": 2, "label": "two", "price": decimal.Decimal("2.25"), "note": None},
        {"id": 3, "label": "three", "price": decimal.Decimal("12345678901.25"), "note": "new"},
    ]
    assert rows(table.scan().to_arrow(), "id") == expected
    ours = run(osprey, "SELECT id, label, price, note FROM ev.db.items ORDER BY id")
    assert ours.to_pylist() == expected
    assert ours.schema.field("id").type == pa.int64()

    # pyiceberg appends under the evolved schema; Osprey reads it, and filters on the
    # renamed and widened columns.
    table.append(pa.table({
        "id": pa.array([4], pa.int64()), "label": ["four"],
        "price": pa.array([decimal.Decimal("4.00")], pa.decimal128(18, 2)), "note": ["py"]}))
    assert column(run(osprey, "SELECT label FROM ev.db.items WHERE id > 2 AND note IS NOT NULL "
                              "ORDER BY id"), "label") == ["three", "four"]

    # A column added back under a dropped name is a new column: old rows have no value.
    run(osprey, "ALTER TABLE ev.db.items ADD COLUMN legacy VARCHAR")
    legacy = run(osprey, "SELECT legacy FROM ev.db.items")
    assert column(legacy, "legacy") == [None] * 4
    assert lake.load_table("db.items").schema().find_field("legacy").field_id == 6


def test_bad_changes_are_refused_and_change_nothing(osprey, lake):
    run(osprey, "CREATE TABLE ev.db.strict (id INT, day DATE, name VARCHAR) "
                "WITH (partitioning = ARRAY['day'])")
    before = lake.load_table("db.strict").metadata_location

    assert "cannot change from" in error_of(
        osprey, "ALTER TABLE ev.db.strict ALTER COLUMN name SET DATA TYPE INT")
    assert "no integer type narrower" in error_of(
        osprey, "ALTER TABLE ev.db.strict ALTER COLUMN id SET DATA TYPE SMALLINT")
    assert "nullable" in error_of(
        osprey, "ALTER TABLE ev.db.strict ADD COLUMN must INT NOT NULL")
    assert "partitions the table" in error_of(osprey, "ALTER TABLE ev.db.strict DROP COLUMN day")
    assert "has a column name already" in error_of(
        osprey, "ALTER TABLE ev.db.strict RENAME COLUMN id TO name")
    assert "no column nope" in error_of(osprey, "ALTER TABLE ev.db.strict DROP COLUMN nope")
    assert "unknown table property colour" in error_of(
        osprey, "ALTER TABLE ev.db.strict SET PROPERTIES colour = 'blue'")
    assert "does not exist" in error_of(osprey, "ALTER TABLE ev.db.nope ADD COLUMN x INT")
    assert lake.load_table("db.strict").metadata_location == before

    # IF EXISTS and IF NOT EXISTS make the no-ops quiet.
    run(osprey, "ALTER TABLE IF EXISTS ev.db.nope ADD COLUMN x INT")
    run(osprey, "ALTER TABLE ev.db.strict ADD COLUMN IF NOT EXISTS name VARCHAR")
    run(osprey, "ALTER TABLE ev.db.strict DROP COLUMN IF EXISTS nope")
    assert lake.load_table("db.strict").metadata_location == before


def test_partitioning_evolves_and_both_specs_read(osprey, lake):
    run(osprey, "CREATE TABLE ev.db.events WITH (partitioning = ARRAY['bucket(id, 4)']) AS "
                "SELECT id, CAST(to_timestamp_seconds(1700000000 + id * 86400 * 20) AS TIMESTAMP) "
                "AS ts FROM (SELECT unnest(range(0, 20)) AS id)")
    run(osprey, "ALTER TABLE ev.db.events SET PROPERTIES partitioning = ARRAY['month(ts)']")
    run(osprey, "INSERT INTO ev.db.events SELECT id, CAST(to_timestamp_seconds(1700000000 + "
                "id * 86400 * 20) AS TIMESTAMP) FROM (SELECT unnest(range(20, 40)) AS id)")

    table = lake.load_table("db.events")
    specs = table.specs()
    assert len(specs) == 2
    new_spec = table.spec()
    assert [(f.field_id, f.name, str(f.transform)) for f in new_spec.fields] == [
        (1001, "ts_month", "month")]
    # Each data file is in the spec it was written with.
    by_spec = {}
    for task in table.scan().plan_files():
        by_spec.setdefault(task.file.spec_id, []).append(task.file)
    assert set(by_spec) == {0, new_spec.spec_id}

    # A DELETE across both specs writes each delete file in its data file's spec.
    run(osprey, "DELETE FROM ev.db.events WHERE id % 5 = 0")
    theirs = sorted(column(lake.load_table("db.events").scan().to_arrow(), "id"))
    ours = column(run(osprey, "SELECT id FROM ev.db.events ORDER BY id"), "id")
    assert ours == theirs == [i for i in range(40) if i % 5 != 0]
    assert column(run(osprey, "SELECT count(*) AS n FROM ev.db.events "
                              "WHERE ts >= TIMESTAMP '2024-06-01 00:00:00'"), "n") == [
        sum(1 for i in range(40) if i % 5 and 1700000000 + i * 86400 * 20 >= 1717200000)]

    # Back to a spec the table had: its id is reused; DEFAULT unpartitions.
    run(osprey, "ALTER TABLE ev.db.events SET PROPERTIES partitioning = ARRAY['bucket(id, 4)']")
    assert lake.load_table("db.events").spec().spec_id == 0
    run(osprey, "ALTER TABLE ev.db.events SET PROPERTIES partitioning = DEFAULT")
    table = lake.load_table("db.events")
    assert table.spec().is_unpartitioned() and len(table.specs()) == 3
    run(osprey, "INSERT INTO ev.db.events VALUES (100, TIMESTAMP '2030-01-01 00:00:00')")
    assert 100 in column(lake.load_table("db.events").scan().to_arrow(), "id")


def test_properties_are_set_and_removed(osprey, lake):
    run(osprey, "CREATE TABLE ev.db.tuned (id INT)")
    run(osprey, "ALTER TABLE ev.db.tuned SET PROPERTIES \"write.delete.isolation-level\" = "
                "'snapshot', \"commit.retry.num-retries\" = 7")
    # Spark's spelling too.
    run(osprey, "ALTER TABLE ev.db.tuned SET TBLPROPERTIES ('write.metadata.metrics.default' = "
                "'full')")
    properties = lake.load_table("db.tuned").properties
    assert properties["write.delete.isolation-level"] == "snapshot"
    assert properties["commit.retry.num-retries"] == "7"
    assert properties["write.metadata.metrics.default"] == "full"
    run(osprey, "ALTER TABLE ev.db.tuned SET PROPERTIES \"commit.retry.num-retries\" = DEFAULT")
    assert "commit.retry.num-retries" not in lake.load_table("db.tuned").properties
    # Upgrades are test_v3_writes' (2 to 3); anything else is refused by name.
    assert "upgrades 2 to 3" in error_of(
        osprey, "ALTER TABLE ev.db.tuned SET PROPERTIES format_version = 4")


def test_tables_are_renamed(osprey, lake):
    from pyiceberg.exceptions import NoSuchTableError

    run(osprey, "CREATE TABLE ev.db.before AS SELECT 1 AS id")
    run(osprey, "CREATE SCHEMA ev.archive")
    run(osprey, "ALTER TABLE ev.db.before RENAME TO after")
    assert column(lake.load_table("db.after").scan().to_arrow(), "id") == [1]
    with pytest.raises(NoSuchTableError):
        lake.load_table("db.before")
    assert column(run(osprey, "SELECT id FROM ev.db.after"), "id") == [1]
    # Into another namespace of the catalog; listings follow.
    run(osprey, "ALTER TABLE ev.db.after RENAME TO archive.kept")
    assert "kept" in column(run(osprey, "SHOW TABLES FROM ev.archive"), "Table")
    assert column(lake.load_table("archive.kept").scan().to_arrow(), "id") == [1]

    run(osprey, "CREATE TABLE ev.db.other AS SELECT 2 AS id")
    assert "exists already" in error_of(osprey, "ALTER TABLE ev.archive.kept RENAME TO db.other")
    assert "within its catalog" in error_of(osprey, "ALTER TABLE ev.db.other RENAME TO x.y.z")
    assert "does not exist" in error_of(osprey, "ALTER TABLE ev.db.nope RENAME TO whatever")
    run(osprey, "ALTER TABLE IF EXISTS ev.db.nope RENAME TO whatever")


def test_alter_through_a_rest_catalog(osprey, tmp_path):
    """Through REST, Osprey sends the changes as `updateTable` updates; the server (pyiceberg's
    commit code) applies them."""
    import rest_adapter
    from pyiceberg.catalog.rest import RestCatalog

    db, warehouse = f"sqlite:///{tmp_path}/rest.db", f"file://{tmp_path}/warehouse"
    (tmp_path / "warehouse").mkdir()
    server, base = rest_adapter.serve(db, "altered", warehouse)
    try:
        client = RestCatalog("client", uri=base, warehouse=warehouse)
        client.create_namespace("db")
        run(osprey, f"CREATE CATALOG ev_rest USING iceberg WITH (type = 'rest', uri = '{base}')")
        run(osprey, "CREATE TABLE ev_rest.db.t AS SELECT CAST(1 AS INT) AS id, 'a' AS name")
        run(osprey, "ALTER TABLE ev_rest.db.t ADD COLUMN score DOUBLE")
        run(osprey, "ALTER TABLE ev_rest.db.t ALTER COLUMN id SET DATA TYPE BIGINT")
        run(osprey, "ALTER TABLE ev_rest.db.t RENAME COLUMN name TO label")
        run(osprey, "ALTER TABLE ev_rest.db.t SET PROPERTIES partitioning = ARRAY['label'], "
                    "\"write.delete.mode\" = 'merge-on-read'")
        run(osprey, "INSERT INTO ev_rest.db.t VALUES (2, 'b', 0.5)")
        table = client.load_table("db.t")
        assert [(f.field_id, f.name) for f in table.schema().fields] == [
            (1, "id"), (2, "label"), (3, "score")]
        assert table.schema().find_field("id").field_type == LongType()
        assert [f.name for f in table.spec().fields] == ["label"]
        assert table.properties["write.delete.mode"] == "merge-on-read"
        assert rows(table.scan().to_arrow(), "id") == [
            {"id": 1, "label": "a", "score": None}, {"id": 2, "label": "b", "score": 0.5}]
        assert run(osprey, "SELECT * FROM ev_rest.db.t ORDER BY id").to_pylist() == [
            {"id": 1, "label": "a", "score": None}, {"id": 2, "label": "b", "score": 0.5}]
        run(osprey, "ALTER TABLE ev_rest.db.t RENAME TO renamed")
        assert len(client.load_table("db.renamed").scan().to_arrow()) == 2
        run(osprey, "DROP CATALOG ev_rest")
    finally:
        server.shutdown()
