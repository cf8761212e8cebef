"""Osprey reads Iceberg tables that pyiceberg wrote, and gives pyiceberg's own answers.

pyiceberg (pinned in tests/iceberg/requirements.txt) is the independent writer: it appends,
overwrites, deletes (copy-on-write), evolves schemas and partition specs. Each table is then
registered in Osprey with `CREATE EXTERNAL TABLE ... STORED AS ICEBERG` and read through Flight
SQL, and the rows are compared with pyiceberg's scan of the same snapshot.
"""

import datetime
import decimal
import uuid

import pyarrow as pa
import pytest
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import (BucketTransform, DayTransform, HourTransform,
                                  IdentityTransform, MonthTransform, TruncateTransform,
                                  VoidTransform, YearTransform)
from pyiceberg.types import (BinaryType, BooleanType, DateType, DecimalType, DoubleType,
                             FixedType, FloatType, IntegerType, ListType, LongType, MapType,
                             NestedField, StringType, StructType, TimestampType,
                             TimestamptzType, TimeType, UUIDType)

from conftest import register, run, table_dir

UTC = datetime.timezone.utc


def plain(value):
    """A value as both sides can compare it: UUIDs as their bytes, maps as sorted pairs."""
    if isinstance(value, uuid.UUID):
        return value.bytes
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            return sorted((plain(k), plain(v)) for k, v in value)
        return [plain(v) for v in value]
    return value


def rows(table: pa.Table, key="id"):
    """`table`'s rows as plain dicts, ordered by `key`."""
    return [plain(row) for row in sorted(table.to_pylist(), key=lambda row: row[key])]


def assert_same(uri, table, name, key="id"):
    """Osprey's rows of lake.NAME equal pyiceberg's scan of `table`'s current snapshot."""
    expected = table.scan().to_arrow()
    got = run(uri, f"SELECT * FROM lake.{name}")
    assert got.schema.names == expected.schema.names
    assert rows(got, key) == rows(expected, key)


ALL_TYPES = Schema(
    NestedField(1, "id", LongType(), required=True),
    NestedField(2, "name", StringType()),
    NestedField(3, "score", DoubleType()),
    NestedField(4, "amount", DecimalType(10, 2)),
    NestedField(5, "born", DateType()),
    NestedField(6, "seen", TimestampType()),
    NestedField(7, "seen_tz", TimestamptzType()),
    NestedField(8, "flag", BooleanType()),
    NestedField(9, "token", UUIDType()),
    NestedField(10, "code", FixedType(3)),
    NestedField(11, "blob", BinaryType()),
    NestedField(12, "age", IntegerType()),
    NestedField(13, "ratio", FloatType()),
    NestedField(14, "at", TimeType()),
    NestedField(15, "tags", ListType(16, StringType(), element_required=False)),
    NestedField(17, "attrs", MapType(18, StringType(), 19, LongType(), value_required=False)),
    NestedField(20, "place", StructType(
        NestedField(21, "lat", DoubleType()),
        NestedField(22, "lon", DoubleType()),
    )),
)


def person(i):
    return {
        "id": i,
        "name": f"person {i}" if i % 5 else None,
        "score": i * 1.5,
        "amount": decimal.Decimal(f"{i * 10}.{i % 100:02d}"),
        "born": datetime.date(1990, 1, 1) + datetime.timedelta(days=i),
        "seen": datetime.datetime(2024, 1, 1) + datetime.timedelta(hours=i),
        "seen_tz": datetime.datetime(2024, 1, 1, tzinfo=UTC) + datetime.timedelta(minutes=i),
        "flag": i % 2 == 0,
        "token": uuid.UUID(int=i).bytes,
        "code": bytes([i % 256, 1, 2]),
        "blob": b"x" * (i % 4),
        "age": 20 + i,
        "ratio": 0.5,
        "at": datetime.time(12, i % 60),
        "tags": [f"t{i}", None] if i % 3 else [],
        "attrs": {"a": i, "b": None} if i % 4 else {},
        "place": {"lat": float(i), "lon": -float(i)} if i % 6 else None,
    }


def append(table, people):
    table.append(pa.Table.from_pylist(people, schema=table.schema().as_arrow()))


def test_every_type_appends_overwrites_and_copy_on_write_deletes(osprey, catalog):
    table = catalog.create_table("db.people", schema=ALL_TYPES,
                                 properties={"format-version": "2"})
    append(table, [person(i) for i in range(1, 21)])
    append(table, [person(i) for i in range(21, 41)])
    table.delete("id >= 35")
    table.overwrite(pa.Table.from_pylist([person(i) for i in range(100, 105)],
                                         schema=table.schema().as_arrow()),
                    overwrite_filter="id <= 5")
    register(osprey, "people", table_dir(table))
    assert_same(osprey, catalog.load_table("db.people"), "people")
    got = run(osprey, "SELECT count(*) AS n, sum(amount) AS total FROM lake.people "
                      "WHERE born > DATE '1990-01-10'").to_pylist()[0]
    expected = [p for p in (person(i) for i in list(range(6, 35)) + list(range(100, 105)))
                if p["born"] > datetime.date(1990, 1, 10)]
    assert got == {"n": len(expected), "total": sum(p["amount"] for p in expected)}


def test_schema_evolution_reads_old_files_by_field_id(osprey, catalog):
    table = catalog.create_table("db.evolving", schema=ALL_TYPES,
                                 properties={"format-version": "2"})
    append(table, [person(i) for i in range(1, 11)])
    with table.update_schema() as update:
        update.rename_column("name", "full_name")
        update.delete_column("score")
        update.update_column("age", LongType())
        update.update_column("ratio", DoubleType())
        update.add_column("email", StringType())
        update.rename_column("place.lat", "latitude")
        update.add_column(("place", "alt"), DoubleType())
    # A column re-added under a dropped column's name is a new column: old files read NULL.
    with table.update_schema() as update:
        update.move_first("full_name")
        update.add_column("score", StringType())
    table = catalog.load_table("db.evolving")
    newer = []
    for i in range(11, 16):
        row = person(i)
        row["full_name"] = row.pop("name")
        del row["score"]
        row["email"] = f"p{i}@example.com"
        row["score"] = "high"
        row["place"] = {"latitude": 1.0, "lon": 2.0, "alt": 3.0}
        newer.append(row)
    append(table, newer)
    register(osprey, "evolving", table_dir(table))
    assert_same(osprey, catalog.load_table("db.evolving"), "evolving")
    old = run(osprey, "SELECT full_name, email, score, age FROM lake.evolving WHERE id = 2")
    assert old.to_pylist() == [{"full_name": "person 2", "email": None, "score": None, "age": 22}]
    assert old.schema.field("age").type == pa.int64()


EVENTS = Schema(
    NestedField(1, "id", LongType(), required=True),
    NestedField(2, "category", StringType()),
    NestedField(3, "name", StringType()),
    NestedField(4, "ts", TimestampType()),
    NestedField(5, "day", DateType()),
    NestedField(6, "ts_tz", TimestamptzType()),
    NestedField(7, "size", IntegerType()),
)


def event(i):
    return {
        "id": i,
        "category": ["red", "green", "blue"][i % 3],
        "name": f"event-{i:04d}",
        "ts": datetime.datetime(2023, 1, 1) + datetime.timedelta(hours=37 * i),
        "day": datetime.date(2020, 1, 1) + datetime.timedelta(days=41 * i),
        "ts_tz": datetime.datetime(2023, 6, 1, tzinfo=UTC) + datetime.timedelta(hours=5 * i),
        "size": i * 7,
    }


def test_every_partition_transform_and_spec_evolution(osprey, catalog):
    spec = PartitionSpec(
        PartitionField(2, 1000, IdentityTransform(), "category"),
        PartitionField(1, 1001, BucketTransform(4), "id_bucket"),
        PartitionField(3, 1002, TruncateTransform(7), "name_trunc"),
        PartitionField(4, 1003, DayTransform(), "ts_day"),
        PartitionField(5, 1004, YearTransform(), "day_year"),
        PartitionField(6, 1005, HourTransform(), "ts_tz_hour"),
        PartitionField(7, 1006, VoidTransform(), "size_void"),
    )
    table = catalog.create_table("db.events", schema=EVENTS, partition_spec=spec,
                                 properties={"format-version": "2"})
    table.append(pa.Table.from_pylist([event(i) for i in range(40)],
                                      schema=table.schema().as_arrow()))
    with table.update_spec() as update:
        update.remove_field("ts_day")
        update.add_field("ts", MonthTransform(), "ts_month")
    table = catalog.load_table("db.events")
    table.append(pa.Table.from_pylist([event(i) for i in range(40, 60)],
                                      schema=table.schema().as_arrow()))
    register(osprey, "events", table_dir(table))
    assert_same(osprey, catalog.load_table("db.events"), "events")
    got = run(osprey, "SELECT category, count(*) AS n FROM lake.events "
                      "WHERE ts >= TIMESTAMP '2023-03-01 00:00:00' GROUP BY category "
                      "ORDER BY category").to_pylist()
    events = [event(i) for i in range(60)]
    expected = sorted({c: sum(1 for e in events if e["category"] == c
                              and e["ts"] >= datetime.datetime(2023, 3, 1))
                       for c in ("red", "green", "blue")}.items())
    assert [(r["category"], r["n"]) for r in got] == [e for e in expected if e[1]]


def test_a_scan_runs_on_the_executors(osprey, catalog):
    table = catalog.create_table("db.spread", schema=EVENTS)
    for chunk in range(4):
        table.append(pa.Table.from_pylist([event(i) for i in range(chunk * 50, chunk * 50 + 50)],
                                          schema=table.schema().as_arrow()))
    register(osprey, "spread", table_dir(table))
    plan = "\n".join(str(v) for v in run(osprey, "EXPLAIN SELECT category, count(*) "
                                                 "FROM lake.spread GROUP BY 1").column(1))
    assert "Stage" in plan, plan
    got = run(osprey, "SELECT count(*) AS n, sum(size) AS s FROM lake.spread").to_pylist()
    assert got == [{"n": 200, "s": sum(i * 7 for i in range(200))}]


def test_commits_by_another_writer_show_at_the_next_query(osprey, catalog):
    table = catalog.create_table("db.moving", schema=EVENTS)
    table.append(pa.Table.from_pylist([event(1)], schema=table.schema().as_arrow()))
    register(osprey, "moving", table_dir(table))
    pinned_at = catalog.load_table("db.moving").metadata_location
    run(osprey, f"CREATE EXTERNAL TABLE lake.moving_v1 STORED AS ICEBERG LOCATION '{pinned_at}'")
    table.append(pa.Table.from_pylist([event(2)], schema=table.schema().as_arrow()))
    assert run(osprey, "SELECT count(*) AS n FROM lake.moving").to_pylist() == [{"n": 2}]
    # Registered by its metadata file, a table stays at that version.
    assert run(osprey, "SELECT count(*) AS n FROM lake.moving_v1").to_pylist() == [{"n": 1}]
    # SHOW CREATE TABLE gives the statement that registers it again.
    shown = run(osprey, "SHOW CREATE TABLE lake.moving").to_pylist()[0]["definition"]
    lines = shown.splitlines()
    statement = "\n".join(line for line in lines if not line.startswith("--"))
    assert "STORED AS ICEBERG" in statement and "(" not in statement, shown
    assert "-- Iceberg format version 2" in lines, shown
    run(osprey, "DROP TABLE lake.moving")
    run(osprey, shown)
    assert run(osprey, "SELECT count(*) AS n FROM lake.moving").to_pylist() == [{"n": 2}]


def test_bad_metadata_is_a_clear_error(osprey, tmp_path):
    import adbc_driver_manager

    broken = tmp_path / "broken" / "metadata"
    broken.mkdir(parents=True)
    (broken / "v1.metadata.json").write_text("{not json")
    with pytest.raises(adbc_driver_manager.Error) as error:
        run(osprey, "CREATE EXTERNAL TABLE lake_bad STORED AS ICEBERG "
                    f"LOCATION '{tmp_path / 'broken'}'")
    assert "v1.metadata.json" in str(error.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(adbc_driver_manager.Error) as error:
        run(osprey, f"CREATE EXTERNAL TABLE lake_none STORED AS ICEBERG LOCATION '{empty}'")
    assert "no Iceberg metadata file" in str(error.value)


def test_metadata_tables_match_pyicebergs(osprey, catalog):
    table = catalog.create_table("db.inspected", schema=EVENTS)
    table.append(pa.Table.from_pylist([event(i) for i in range(10)],
                                      schema=table.schema().as_arrow()))
    table.append(pa.Table.from_pylist([event(i) for i in range(10, 15)],
                                      schema=table.schema().as_arrow()))
    table.delete("id < 3")
    table = catalog.load_table("db.inspected")
    register(osprey, "inspected", table_dir(table))

    def pairs(arrow, *columns):
        return sorted(tuple(row[c] for c in columns) for row in arrow.to_pylist())

    snapshots = run(osprey, 'SELECT * FROM lake."inspected$snapshots"')
    assert snapshots.schema.names == ["committed_at", "snapshot_id", "parent_id", "operation",
                                      "manifest_list", "summary"]
    columns = ("snapshot_id", "parent_id", "operation", "manifest_list")
    assert pairs(snapshots, *columns) == pairs(table.inspect.snapshots(), *columns)
    ours = {r["snapshot_id"]: dict(r["summary"]) for r in snapshots.to_pylist()}
    theirs = {r["snapshot_id"]: dict(r["summary"]) for r in
              table.inspect.snapshots().to_pylist()}
    assert ours == theirs
    history = ("snapshot_id", "parent_id", "is_current_ancestor")
    assert pairs(run(osprey, 'SELECT * FROM lake."inspected$history"'), *history) == \
        pairs(table.inspect.history(), *history)
    refs = ("name", "type", "snapshot_id")
    assert pairs(run(osprey, 'SELECT * FROM lake."inspected$refs"'), *refs) == \
        pairs(table.inspect.refs(), *refs)
    files = ("content", "file_path", "record_count", "file_size_in_bytes")
    assert pairs(run(osprey, 'SELECT * FROM lake."inspected$files"'), *files) == \
        pairs(table.inspect.files(), *files)
    manifests = ("path", "length", "added_data_files_count", "existing_data_files_count",
                 "deleted_data_files_count")
    assert pairs(run(osprey, 'SELECT * FROM lake."inspected$manifests"'), *manifests) == \
        pairs(table.inspect.manifests(), *manifests)
    with pytest.raises(Exception) as error:
        run(osprey, 'SELECT * FROM lake."inspected$nothing"')
    assert "$snapshots" in str(error.value)


def test_time_travel_by_snapshot_ref_and_timestamp(osprey, catalog):
    import time

    table = catalog.create_table("db.travel", schema=EVENTS)
    table.append(pa.Table.from_pylist([event(i) for i in range(5)],
                                      schema=table.schema().as_arrow()))
    first = catalog.load_table("db.travel").current_snapshot()
    time.sleep(0.05)
    with table.update_schema() as update:
        update.add_column("note", StringType())
    table = catalog.load_table("db.travel")
    later = [dict(event(i), note="new") for i in range(5, 8)]
    table.append(pa.Table.from_pylist(later, schema=table.schema().as_arrow()))
    table = catalog.load_table("db.travel")
    table.manage_snapshots().create_tag(first.snapshot_id, "launch").commit()
    register(osprey, "travel", table_dir(table))

    then = table.scan(snapshot_id=first.snapshot_id).to_arrow()
    by_id = run(osprey, f"SELECT * FROM lake.travel FOR VERSION AS OF {first.snapshot_id}")
    # An old snapshot reads with the schema it was written with.
    assert by_id.schema.names == then.schema.names
    assert rows(by_id) == rows(then)
    by_tag = run(osprey, "SELECT * FROM lake.travel FOR VERSION AS OF 'launch'")
    assert rows(by_tag) == rows(then)
    at = datetime.datetime.fromtimestamp(first.timestamp_ms / 1000, UTC)
    by_time = run(osprey, "SELECT count(*) AS n FROM lake.travel FOR TIMESTAMP AS OF "
                          f"TIMESTAMP '{at:%Y-%m-%d %H:%M:%S.%f} UTC'")
    assert by_time.to_pylist() == [{"n": 5}]
    assert run(osprey, "SELECT count(*) AS n FROM lake.travel").to_pylist() == [{"n": 8}]
    # Joined with the present, in one query.
    joined = run(osprey, "SELECT count(*) AS n FROM lake.travel t JOIN lake.travel "
                         f"FOR VERSION AS OF {first.snapshot_id} o ON t.id = o.id")
    assert joined.to_pylist() == [{"n": 5}]
    for sql, message in [
        ("SELECT * FROM lake.travel FOR VERSION AS OF 1", "no snapshot 1"),
        ("SELECT * FROM lake.travel FOR VERSION AS OF 'nope'", "no branch or tag"),
        ("SELECT * FROM lake.travel FOR TIMESTAMP AS OF TIMESTAMP '2000-01-01 00:00:00 UTC'",
         "no snapshot was current"),
    ]:
        with pytest.raises(Exception) as error:
            run(osprey, sql)
        assert message in str(error.value), sql


def test_time_travel_on_a_table_without_versions_is_refused(osprey, tmp_path):
    import pyarrow.parquet as pq

    (tmp_path / "plain").mkdir()
    pq.write_table(pa.table({"id": [1, 2]}), tmp_path / "plain" / "part-0.parquet")
    run(osprey, "CREATE SCHEMA IF NOT EXISTS lake")
    run(osprey, f"CREATE EXTERNAL TABLE lake.plain STORED AS PARQUET "
                f"LOCATION '{tmp_path / 'plain'}/'")
    with pytest.raises(Exception) as error:
        run(osprey, "SELECT * FROM lake.plain FOR VERSION AS OF 1")
    assert "only Iceberg tables keep versions" in str(error.value)
