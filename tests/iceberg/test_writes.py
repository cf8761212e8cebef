"""Osprey writes Iceberg tables of an attached SQL catalog, and pyiceberg (the independent
reader and writer) reads what Osprey committed, and commits on top of it."""

import pathlib

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import DoubleType, LongType, NestedField, StringType, TimestampType

from conftest import error_of, run

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=True),
    NestedField(2, "name", StringType()),
    NestedField(3, "amount", DoubleType()),
    NestedField(4, "ts", TimestampType()),
)


@pytest.fixture(scope="module")
def lake(osprey, tmp_path_factory):
    """A pyiceberg SqlCatalog `writes` on SQLite, attached to Osprey as `w`."""
    root = tmp_path_factory.mktemp("iceberg-writes")
    (root / "warehouse").mkdir()
    catalog = SqlCatalog("writes", uri=f"sqlite:///{root}/catalog.db",
                         warehouse=f"file://{root}/warehouse")
    catalog.create_namespace("db")
    run(osprey, f"CREATE CATALOG w USING iceberg WITH (type = 'sql', "
                f"uri = 'sqlite://{root}/catalog.db', catalog_name = 'writes')")
    yield catalog
    run(osprey, "DROP CATALOG w")


def data_files(table):
    return sorted(p.name for p in pathlib.Path(table.location().removeprefix("file://")).rglob("*.parquet"))


def test_insert_commits_a_snapshot_pyiceberg_reads(osprey, lake):
    table = lake.create_table("db.events", SCHEMA)
    table.append(pa.Table.from_pylist(
        [{"id": i, "name": f"py{i}", "amount": i / 2, "ts": None} for i in range(3)],
        schema=SCHEMA.as_arrow()))

    written = run(osprey, "INSERT INTO w.db.events VALUES (10, 'os10', 1.5, TIMESTAMP '2024-05-01 10:00:00'), "
                          "(11, NULL, NULL, NULL)")
    assert written.num_rows == 1
    got = run(osprey, "INSERT INTO w.db.events SELECT id, concat('os', CAST(id AS VARCHAR)) AS name, "
                      "CAST(id AS DOUBLE) AS amount, NULL AS ts FROM (SELECT unnest(range(100, 300)) AS id)")
    assert got.num_rows == 1

    # pyiceberg sees every row, under the table's own schema.
    table = table.refresh()
    theirs = table.scan().to_arrow().sort_by("id")
    ours = run(osprey, "SELECT id, name, amount, ts FROM w.db.events ORDER BY id")
    assert theirs.num_rows == 3 + 2 + 200
    assert theirs.column("id").to_pylist() == ours.column("id").to_pylist()
    assert theirs.column("name").to_pylist() == ours.column("name").to_pylist()
    assert theirs.column("amount").to_pylist() == ours.column("amount").to_pylist()
    row = theirs.filter(pa.compute.equal(theirs.column("id"), 10)).to_pylist()[0]
    assert (row["name"], row["amount"], str(row["ts"])) == ("os10", 1.5, "2024-05-01 10:00:00")

    # Each INSERT is one append snapshot on top of the last.
    snapshots = table.snapshots()
    assert len(snapshots) == 3
    assert [s.parent_snapshot_id for s in snapshots[1:]] == [s.snapshot_id for s in snapshots[:-1]]
    last = table.current_snapshot()
    assert last.summary.operation.value == "append"
    assert last.summary["added-records"] == "200"
    assert last.summary["total-records"] == "205"

    # The manifests carry the files' metrics, which prune Osprey's own scans.
    files = table.inspect.files().to_pylist()
    ours_files = [f for f in files if "/data/" in f["file_path"] and f["record_count"] == 200]
    assert len(ours_files) == 1
    metrics = {key: dict(ours_files[0][key]) for key in ("null_value_counts", "lower_bounds", "upper_bounds")}
    assert metrics["null_value_counts"][4] == 200 and metrics["null_value_counts"][1] == 0
    assert metrics["lower_bounds"][1] == (100).to_bytes(8, "little")
    assert metrics["upper_bounds"][1] == (299).to_bytes(8, "little")
    assert metrics["lower_bounds"][2] == b"os100" and metrics["upper_bounds"][2] == b"os299"
    plan = str(run(osprey, "EXPLAIN SELECT * FROM w.db.events WHERE id = 11").to_pylist())
    assert "data files 1 of 3" in plan, plan

    # pyiceberg commits on top of Osprey's snapshot, and Osprey sees it at once.
    table.append(pa.Table.from_pylist([{"id": 1000, "name": "py1000", "amount": None, "ts": None}],
                                      schema=SCHEMA.as_arrow()))
    assert run(osprey, "SELECT count(*) AS n FROM w.db.events").to_pylist() == [{"n": 206}]


def test_a_failed_or_refused_insert_changes_nothing(osprey, lake):
    table = lake.create_table("db.strict", SCHEMA)
    table.append(pa.Table.from_pylist([{"id": 1, "name": "a", "amount": None, "ts": None}],
                                      schema=SCHEMA.as_arrow()))
    before = (table.refresh().current_snapshot().snapshot_id, data_files(table))

    # A failing query: nothing is committed, and its files are gone.
    message = error_of(osprey, "INSERT INTO w.db.strict SELECT id, 'x' AS name, 1 / (id - id) AS amount, NULL AS ts "
                               "FROM (SELECT unnest(range(0, 10)) AS id)")
    assert "zero" in message.lower(), message
    assert (table.refresh().current_snapshot().snapshot_id, data_files(table)) == before

    # A NULL for the required column `id`: refused, nothing committed, its files gone.
    message = error_of(osprey, "INSERT INTO w.db.strict VALUES (2, 'b', NULL, NULL), (NULL, 'c', NULL, NULL)")
    assert "column id is required" in message and "1 null value" in message, message
    assert (table.refresh().current_snapshot().snapshot_id, data_files(table)) == before

    # A format-1 table is not written: refused by name before anything is written.
    lake.create_table("db.old", SCHEMA, properties={"format-version": "1"})
    message = error_of(osprey, "INSERT INTO w.db.old VALUES (1, 'a', NULL, NULL)")
    assert "format version 1" in message and "w.db.old" in message, message
    assert data_files(lake.load_table("db.old")) == []


def test_concurrent_appends_all_survive(osprey, lake):
    """Osprey and pyiceberg append to one table at once: commits that lose the race are
    rebuilt on the winner and retried, so every append survives and the count adds up."""
    import threading

    table = lake.create_table("db.busy", SCHEMA, properties={"commit.retry.num-retries": "20",
                                                              "commit.retry.min-wait-ms": "10",
                                                              "commit.retry.max-wait-ms": "200"})
    rounds = 20
    errors = []

    def pyiceberg_appends():
        try:
            for i in range(rounds):
                batch = pa.Table.from_pylist([{"id": 10_000 + i, "name": "py", "amount": None, "ts": None}],
                                             schema=SCHEMA.as_arrow())
                for _ in range(50):  # pyiceberg's own append does not retry a lost race
                    try:
                        lake.load_table("db.busy").append(batch)
                        break
                    except Exception as err:  # noqa: BLE001 - CommitFailedException, retried
                        if "CommitFailed" not in type(err).__name__ and "commit" not in str(err).lower():
                            raise
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    writer = threading.Thread(target=pyiceberg_appends)
    writer.start()
    for i in range(rounds):
        run(osprey, f"INSERT INTO w.db.busy VALUES ({i}, 'osprey', NULL, NULL), ({100 + i}, 'osprey', NULL, NULL)")
    writer.join()
    assert not errors, errors

    got = run(osprey, "SELECT name, count(*) AS n FROM w.db.busy GROUP BY name ORDER BY name").to_pylist()
    assert got == [{"name": "osprey", "n": 2 * rounds}, {"name": "py", "n": rounds}]
    table = lake.load_table("db.busy")
    assert len(table.scan().to_arrow()) == 3 * rounds
    assert len(table.snapshots()) == 2 * rounds


def test_insert_through_a_rest_catalog(osprey, tmp_path):
    """A REST catalog (rest_adapter.py over a SqlCatalog): Osprey's INSERT is committed with
    the protocol's updateTable, the server writes the metadata, and pyiceberg's own
    RestCatalog reads the result and appends on top."""
    import rest_adapter
    from pyiceberg.catalog.rest import RestCatalog

    (tmp_path / "warehouse").mkdir()
    db, warehouse = f"sqlite:///{tmp_path}/rest.db", f"file://{tmp_path}/warehouse"
    server, base = rest_adapter.serve(db, "served", warehouse, token="rest-token")
    try:
        client = RestCatalog("client", uri=base, token="rest-token", warehouse=warehouse)
        client.create_namespace("web")
        table = client.create_table("web.visits", SCHEMA)
        table.append(pa.Table.from_pylist([{"id": 1, "name": "py", "amount": None, "ts": None}],
                                          schema=SCHEMA.as_arrow()))
        run(osprey, f"CREATE CATALOG rw USING iceberg WITH (type = 'rest', uri = '{base}', token = 'rest-token')")
        try:
            run(osprey, "INSERT INTO rw.web.visits VALUES (2, 'osprey', 2.5, NULL), (3, 'osprey', NULL, NULL)")
            table = client.load_table("web.visits")
            assert sorted(table.scan().to_arrow().column("id").to_pylist()) == [1, 2, 3]
            assert table.current_snapshot().summary["added-records"] == "2"
            assert len(table.metadata.metadata_log) == 2  # the server wrote each metadata file

            table.append(pa.Table.from_pylist([{"id": 4, "name": "py", "amount": None, "ts": None}],
                                              schema=SCHEMA.as_arrow()))
            got = run(osprey, "SELECT name, count(*) AS n FROM rw.web.visits GROUP BY name ORDER BY name")
            assert got.to_pylist() == [{"name": "osprey", "n": 2}, {"name": "py", "n": 2}]

            # Row-level changes commit through the protocol too: delete manifests and all.
            run(osprey, "DELETE FROM rw.web.visits WHERE id = 2")
            run(osprey, "UPDATE rw.web.visits SET name = 'changed' WHERE id = 4")
            table = client.load_table("web.visits")
            got = sorted((r["id"], r["name"]) for r in table.scan().to_arrow().to_pylist())
            assert got == [(1, "py"), (3, "osprey"), (4, "changed")]
        finally:
            run(osprey, "DROP CATALOG rw")
    finally:
        server.shutdown()
        server.server_close()


def test_create_ctas_and_drop_in_attached_catalogs(osprey, tmp_path):
    """CREATE TABLE, CTAS and DROP TABLE in an attached SQL catalog (with a warehouse) and a
    REST catalog; pyiceberg reads the tables Osprey created."""
    import rest_adapter
    from pyiceberg.catalog.rest import RestCatalog

    (tmp_path / "warehouse").mkdir()
    db, warehouse = f"sqlite:///{tmp_path}/ddl.db", f"file://{tmp_path}/warehouse"
    sql_catalog = SqlCatalog("ddl", uri=db, warehouse=warehouse)
    sql_catalog.create_namespace("db")
    server, base = rest_adapter.serve(db, "ddl", warehouse)
    run(osprey, f"CREATE CATALOG ddl_sql USING iceberg WITH (type = 'sql', uri = 'sqlite://{tmp_path}/ddl.db', "
                f"catalog_name = 'ddl', warehouse = '{warehouse}')")
    run(osprey, f"CREATE CATALOG ddl_rest USING iceberg WITH (type = 'rest', uri = '{base}')")
    try:
        run(osprey, "CREATE TABLE ddl_sql.db.empty (id BIGINT NOT NULL, name VARCHAR, price DECIMAL(10, 2))")
        created = sql_catalog.load_table("db.empty")
        assert created.location() == f"{warehouse}/db.db/empty"
        assert [(f.name, str(f.field_type), f.required) for f in created.schema().fields] == [
            ("id", "long", True), ("name", "string", False), ("price", "decimal(10, 2)", False)]
        assert "already exists" in error_of(osprey, "CREATE TABLE ddl_sql.db.empty (id BIGINT)")
        run(osprey, "CREATE TABLE IF NOT EXISTS ddl_sql.db.empty (id BIGINT)")

        run(osprey, "CREATE TABLE ddl_sql.db.squares AS SELECT id, id * id AS square "
                    "FROM (SELECT unnest(range(0, 50)) AS id)")
        squares = sql_catalog.load_table("db.squares").scan().to_arrow()
        assert sorted(squares.column("square").to_pylist()) == [i * i for i in range(50)]

        # Through REST: the server creates the table and writes its metadata.
        run(osprey, "CREATE TABLE ddl_rest.db.cubes AS SELECT id, id * id * id AS cube "
                    "FROM (SELECT unnest(range(0, 10)) AS id)")
        cubes = RestCatalog("c", uri=base).load_table("db.cubes").scan().to_arrow()
        assert sorted(cubes.column("cube").to_pylist()) == [i ** 3 for i in range(10)]

        # DROP TABLE: the catalog forgets the table; its files are not Osprey's to delete.
        location = pathlib.Path(sql_catalog.load_table("db.squares").location().removeprefix("file://"))
        run(osprey, "DROP TABLE ddl_sql.db.squares")
        assert "squares" not in [t[1] for t in sql_catalog.list_tables("db")]
        assert any(location.rglob("*.parquet"))
        run(osprey, "DROP TABLE IF EXISTS ddl_sql.db.squares")
        assert "does not exist" in error_of(osprey, "DROP TABLE ddl_sql.db.squares")
        run(osprey, "DROP TABLE ddl_rest.db.cubes")
        assert "cubes" not in [t[1] for t in sql_catalog.list_tables("db")]

        # Schemas (namespaces) too, in both kinds of catalog.
        run(osprey, "CREATE SCHEMA ddl_sql.fresh")
        assert ("fresh",) in sql_catalog.list_namespaces()
        assert "already exists" in error_of(osprey, "CREATE SCHEMA ddl_sql.fresh")
        run(osprey, "CREATE SCHEMA IF NOT EXISTS ddl_sql.fresh")
        run(osprey, "CREATE TABLE ddl_sql.fresh.t (id BIGINT)")
        assert "drop them first" in error_of(osprey, "DROP SCHEMA ddl_sql.fresh")
        run(osprey, "DROP TABLE ddl_sql.fresh.t")
        run(osprey, "DROP SCHEMA ddl_sql.fresh")
        assert ("fresh",) not in sql_catalog.list_namespaces()
        assert "does not exist" in error_of(osprey, "DROP SCHEMA ddl_sql.fresh")
        run(osprey, "DROP SCHEMA IF EXISTS ddl_sql.fresh")
        run(osprey, "CREATE SCHEMA ddl_rest.served_ns")
        assert ("served_ns",) in RestCatalog("c", uri=base).list_namespaces()
        run(osprey, "DROP SCHEMA ddl_rest.served_ns")
        assert ("served_ns",) not in RestCatalog("c", uri=base).list_namespaces()

    finally:
        run(osprey, "DROP CATALOG ddl_sql")
        run(osprey, "DROP CATALOG ddl_rest")
        server.shutdown()
        server.server_close()


def test_insert_overwrite_replaces_every_file(osprey, lake):
    table = lake.create_table("db.replaced", SCHEMA)
    table.append(pa.Table.from_pylist([{"id": i, "name": "py", "amount": None, "ts": None} for i in range(5)],
                                      schema=SCHEMA.as_arrow()))
    run(osprey, "INSERT INTO w.db.replaced VALUES (10, 'osprey', NULL, NULL)")
    before = lake.load_table("db.replaced").current_snapshot().snapshot_id

    # The query reads the table as it was; its result replaces every file.
    run(osprey, "INSERT OVERWRITE w.db.replaced SELECT id + 100 AS id, name, amount, ts FROM w.db.replaced")
    table = lake.load_table("db.replaced")
    assert sorted(table.scan().to_arrow().column("id").to_pylist()) == [100, 101, 102, 103, 104, 110]
    summary = table.current_snapshot().summary
    assert summary.operation.value == "overwrite"
    assert (summary["deleted-records"], summary["total-records"], summary["added-records"]) == ("6", "6", "6")
    assert table.current_snapshot().parent_snapshot_id == before

    # The snapshot before is still there to travel back to.
    old = run(osprey, f"SELECT count(*) AS n FROM w.db.replaced FOR VERSION AS OF {before}").to_pylist()
    assert old == [{"n": 6}]
    assert run(osprey, "SELECT count(*) AS n FROM w.db.replaced").to_pylist() == [{"n": 6}]
