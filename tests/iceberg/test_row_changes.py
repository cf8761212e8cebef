"""DELETE, UPDATE, MERGE and TRUNCATE on the Iceberg tables of an attached catalog,
merge-on-read: Osprey writes position delete files (and new rows) and commits one snapshot per
statement; pyiceberg (the independent reader) reads the changed table, and keeps writing to
it."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.manifest import DataFileContent
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import BucketTransform, IdentityTransform
from pyiceberg.types import LongType, NestedField, StringType

from conftest import error_of, run

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=True),
    NestedField(2, "region", StringType()),
)


@pytest.fixture(scope="module")
def lake(osprey, tmp_path_factory):
    """A pyiceberg SqlCatalog `dels` on SQLite, attached to Osprey as `d`."""
    root = tmp_path_factory.mktemp("iceberg-deletes")
    (root / "warehouse").mkdir()
    catalog = SqlCatalog("dels", uri=f"sqlite:///{root}/catalog.db",
                         warehouse=f"file://{root}/warehouse")
    catalog.create_namespace("db")
    run(osprey, f"CREATE CATALOG d USING iceberg WITH (type = 'sql', "
                f"uri = 'sqlite://{root}/catalog.db', catalog_name = 'dels')")
    yield catalog
    run(osprey, "DROP CATALOG d")


def rows(n, start=0):
    return pa.Table.from_pylist([{"id": i, "region": f"r{i % 4}"} for i in range(start, start + n)],
                                schema=SCHEMA.as_arrow())


def ids(table):
    return sorted(table.refresh().scan().to_arrow().column("id").to_pylist())


def deleted(osprey, sql):
    """The row count a DELETE reports."""
    return run(osprey, sql).to_pylist()[0]


@pytest.mark.parametrize("partitioned", [False, True])
def test_delete_writes_position_deletes_pyiceberg_applies(osprey, lake, partitioned):
    spec = PartitionSpec(
        PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="region"),
        PartitionField(source_id=1, field_id=1001, transform=BucketTransform(2), name="id_bucket"),
    ) if partitioned else PartitionSpec()
    name = f"db.events_{'parted' if partitioned else 'flat'}"
    table = lake.create_table(name, SCHEMA, partition_spec=spec)
    table.append(rows(50))                       # pyiceberg's data files
    osprey_name = f"d.{name}"
    run(osprey, f"INSERT INTO {osprey_name} SELECT id, 'r' || CAST(id % 4 AS VARCHAR) AS region "
                f"FROM (SELECT unnest(range(50, 120)) AS id)")  # Osprey's
    before = table.refresh().current_snapshot().snapshot_id

    # Rows of both writers' files, in every partition.
    count = deleted(osprey, f"DELETE FROM {osprey_name} WHERE id % 3 = 0")
    expected = [i for i in range(120) if i % 3 != 0]
    assert list(count.values()) == [120 - len(expected)]
    assert ids(table) == expected
    got = run(osprey, f"SELECT id FROM {osprey_name} ORDER BY id").column("id").to_pylist()
    assert got == expected

    # One `delete` snapshot of file-scoped position delete files, on top of the one read.
    snapshot = table.refresh().current_snapshot()
    assert snapshot.parent_snapshot_id == before
    assert snapshot.summary.operation.value == "delete"
    assert snapshot.summary["added-position-deletes"] == str(120 - len(expected))
    tasks = list(table.scan().plan_files())
    partition_of = {task.file.file_path: task.file.partition for task in tasks}
    deletes = {delete.file_path: delete for task in tasks for delete in task.delete_files}
    assert deletes
    for delete in deletes.values():
        assert delete.content == DataFileContent.POSITION_DELETES
        # File-scoped: every position in a delete file is in one data file, whose
        # partition the delete file is in.
        paths = pq.ParquetFile(delete.file_path.removeprefix("file://")).read().column("file_path")
        [data_file] = set(paths.to_pylist())
        assert delete.partition == partition_of[data_file]

    # Deleted rows are not deleted again: the second DELETE counts only what is left.
    count = deleted(osprey, f"DELETE FROM {osprey_name} WHERE id < 10")
    assert list(count.values()) == [len([i for i in expected if i < 10])]
    expected = [i for i in expected if i >= 10]
    assert ids(table) == expected

    # Nothing matches: nothing is committed.
    snapshots = len(table.refresh().snapshots())
    assert list(deleted(osprey, f"DELETE FROM {osprey_name} WHERE id > 1000").values()) == [0]
    assert len(table.refresh().snapshots()) == snapshots

    # pyiceberg keeps writing: an append, and its own (copy-on-write) delete.
    table.refresh().append(rows(5, start=500))
    table.refresh().delete("id == 11")
    expected = [i for i in expected if i != 11] + list(range(500, 505))
    got = run(osprey, f"SELECT id FROM {osprey_name} ORDER BY id").column("id").to_pylist()
    assert got == sorted(expected) == ids(table)

    # Without WHERE, every row goes: metadata only, a snapshot that lists no file.
    assert list(deleted(osprey, f"DELETE FROM {osprey_name}").values()) == [len(expected)]
    assert ids(table) == []
    assert run(osprey, f"SELECT count(*) AS n FROM {osprey_name}").to_pylist() == [{"n": 0}]
    snapshot = table.refresh().current_snapshot()
    assert snapshot.summary.operation.value == "delete"
    assert "added-position-deletes" not in snapshot.summary.additional_properties
    assert list(table.scan().plan_files()) == []


def test_delete_with_a_subquery_and_time_travel_before_it(osprey, lake):
    table = lake.create_table("db.accounts", SCHEMA)
    table.append(rows(20))
    lake.create_table("db.closed", SCHEMA).append(rows(3, start=5))
    before = table.refresh().current_snapshot().snapshot_id
    count = deleted(osprey, "DELETE FROM d.db.accounts WHERE id IN (SELECT id FROM d.db.closed)")
    assert list(count.values()) == [3]
    assert ids(table) == [i for i in range(20) if i not in (5, 6, 7)]
    old = run(osprey, f"SELECT count(*) AS n FROM d.db.accounts FOR VERSION AS OF {before}")
    assert old.to_pylist() == [{"n": 20}]


def test_truncate_removes_every_file(osprey, lake):
    table = lake.create_table("db.scratch", SCHEMA)
    table.append(rows(10))
    before = table.refresh().current_snapshot().snapshot_id
    run(osprey, "TRUNCATE TABLE d.db.scratch")
    assert ids(table) == []
    assert table.refresh().current_snapshot().summary.operation.value == "delete"
    old = run(osprey, f"SELECT count(*) AS n FROM d.db.scratch FOR VERSION AS OF {before}")
    assert old.to_pylist() == [{"n": 10}]
    # An empty table stays as it is.
    snapshots = len(table.refresh().snapshots())
    run(osprey, "TRUNCATE TABLE d.db.scratch")
    assert len(table.refresh().snapshots()) == snapshots


def test_update_rewrites_the_changed_rows(osprey, lake):
    spec = PartitionSpec(
        PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="region"))
    table = lake.create_table("db.prices", SCHEMA, partition_spec=spec)
    table.append(rows(40))
    run(osprey, "INSERT INTO d.db.prices SELECT id, 'r' || CAST(id % 4 AS VARCHAR) AS region "
                "FROM (SELECT unnest(range(40, 60)) AS id)")
    before = table.refresh().current_snapshot().snapshot_id

    # Rows move between partitions too (region is the partition column).
    count = deleted(osprey, "UPDATE d.db.prices SET region = 'moved', id = id + 1000 WHERE id % 5 = 0")
    changed = [i for i in range(60) if i % 5 == 0]
    assert list(count.values()) == [len(changed)]
    expected = sorted([i for i in range(60) if i % 5 != 0] + [i + 1000 for i in changed])
    assert ids(table) == expected
    theirs = table.refresh().scan(row_filter="region == 'moved'").to_arrow()
    assert sorted(theirs.column("id").to_pylist()) == [i + 1000 for i in changed]
    got = run(osprey, "SELECT id, region FROM d.db.prices WHERE region = 'moved' ORDER BY id")
    assert got.column("id").to_pylist() == [i + 1000 for i in changed]

    # One snapshot: position deletes and the new rows, on top of the one read.
    snapshot = table.refresh().current_snapshot()
    assert snapshot.parent_snapshot_id == before
    assert snapshot.summary.operation.value == "overwrite"
    assert snapshot.summary["added-records"] == str(len(changed))
    assert snapshot.summary["added-position-deletes"] == str(len(changed))

    # Nothing matches: nothing is committed; UPDATE ... FROM is refused by name.
    snapshots = len(table.refresh().snapshots())
    assert list(deleted(osprey, "UPDATE d.db.prices SET id = 0 WHERE id < 0").values()) == [0]
    assert len(table.refresh().snapshots()) == snapshots
    message = error_of(osprey, "UPDATE d.db.prices SET id = 0 FROM d.db.prices AS other WHERE other.id = 1")
    assert "FROM" in message, message


def test_merge_with_every_kind_of_clause(osprey, lake):
    spec = PartitionSpec(
        PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="region"))
    table = lake.create_table("db.stock", SCHEMA, partition_spec=spec)
    table.append(rows(20))
    before = table.refresh().current_snapshot().snapshot_id
    source = ("(SELECT * FROM (VALUES (1, 'x'), (2, 'delete'), (100, 'new'), (101, 'skip')) "
              "AS v(id, region))")
    count = deleted(osprey, f"""
        MERGE INTO d.db.stock t USING {source} s ON t.id = s.id
        WHEN MATCHED AND s.region = 'delete' THEN DELETE
        WHEN MATCHED THEN UPDATE SET region = s.region
        WHEN NOT MATCHED AND s.region <> 'skip' THEN INSERT (id, region) VALUES (s.id, s.region)
        WHEN NOT MATCHED BY SOURCE AND t.id >= 18 THEN DELETE""")
    assert list(count.values()) == [5]
    got = {row["id"]: row["region"] for row in table.refresh().scan().to_arrow().to_pylist()}
    expected = {i: f"r{i % 4}" for i in range(18) if i != 2}
    expected.update({1: "x", 100: "new"})
    assert got == expected
    ours = run(osprey, "SELECT id, region FROM d.db.stock ORDER BY id").to_pylist()
    assert {row["id"]: row["region"] for row in ours} == expected
    snapshot = table.refresh().current_snapshot()
    assert snapshot.parent_snapshot_id == before
    assert snapshot.summary.operation.value == "overwrite"
    assert snapshot.summary["added-position-deletes"] == "4"  # 1 updated, 3 deleted

    # WHEN NOT MATCHED BY SOURCE ... UPDATE: every target row the source does not name.
    count = deleted(osprey, """
        MERGE INTO d.db.stock t USING (SELECT 1 AS id) s ON t.id = s.id
        WHEN NOT MATCHED BY SOURCE AND t.id < 5 THEN UPDATE SET region = 'orphan'""")
    assert list(count.values()) == [3]  # ids 0, 3 and 4 (1 is in the source, 2 is gone)
    got = {row["id"]: row["region"] for row in table.refresh().scan().to_arrow().to_pylist()}
    assert [i for i, region in sorted(got.items()) if region == "orphan"] == [0, 3, 4]

    # A target row matched by two source rows is refused, and nothing is committed.
    snapshots = len(table.refresh().snapshots())
    message = error_of(osprey, """
        MERGE INTO d.db.stock t USING (SELECT * FROM (VALUES (3, 'a'), (3, 'b')) AS v(id, region)) s
        ON t.id = s.id WHEN MATCHED THEN UPDATE SET region = s.region""")
    assert "more than one source row" in message, message
    assert len(table.refresh().snapshots()) == snapshots

    # Into a table with no snapshot yet: only inserts.
    empty = lake.create_table("db.fresh", SCHEMA)
    count = deleted(osprey, f"""
        MERGE INTO d.db.fresh t USING {source} s ON t.id = s.id
        WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.region)""")
    assert list(count.values()) == [4]
    assert ids(empty) == [1, 2, 100, 101]
    assert empty.refresh().current_snapshot().summary.operation.value == "append"


def test_a_table_with_its_own_pos_column_is_refused_by_name(osprey, lake):
    schema = Schema(NestedField(1, "id", LongType()), NestedField(2, "_pos", LongType()))
    table = lake.create_table("db.clash", schema)
    table.append(pa.Table.from_pylist([{"id": 1, "_pos": 7}], schema=schema.as_arrow()))
    message = error_of(osprey, "DELETE FROM d.db.clash WHERE id = 1")
    assert "column named _pos" in message, message
    assert ids(table) == [1]
