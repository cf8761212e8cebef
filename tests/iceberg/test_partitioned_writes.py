"""Osprey writes partitioned Iceberg tables: each data file holds one partition, and its
manifest entry carries the partition tuple. pyiceberg (the independent reader) checks the
tuples against its own transforms of the rows in each file, prunes with them, and appends to
the same tables."""

import datetime
import decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import (BucketTransform, DayTransform, HourTransform, IdentityTransform,
                                  MonthTransform, TruncateTransform)
from pyiceberg.types import (DateType, DecimalType, LongType, NestedField, StringType,
                             TimestampType, TimestamptzType)
from pyiceberg.utils.datetime import date_to_days, datetime_to_micros

from conftest import attached_sql_catalog, error_of, run

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=True),
    NestedField(2, "category", StringType()),
    NestedField(3, "name", StringType()),
    NestedField(4, "price", DecimalType(10, 2)),
    NestedField(5, "ts", TimestampType()),
    NestedField(6, "d", DateType()),
    NestedField(7, "tz", TimestamptzType()),
)

# Every transform, over every kind of source it takes.
SPEC = PartitionSpec(
    PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="category"),
    PartitionField(source_id=5, field_id=1001, transform=DayTransform(), name="ts_day"),
    PartitionField(source_id=1, field_id=1002, transform=BucketTransform(4), name="id_bucket"),
    PartitionField(source_id=3, field_id=1003, transform=TruncateTransform(2), name="name_trunc"),
    PartitionField(source_id=6, field_id=1004, transform=MonthTransform(), name="d_month"),
    PartitionField(source_id=4, field_id=1005, transform=TruncateTransform(100), name="price_trunc"),
    PartitionField(source_id=7, field_id=1006, transform=HourTransform(), name="tz_hour"),
)

ROWS = """SELECT id,
       CASE WHEN id % 7 = 0 THEN NULL ELSE 'c' || CAST(id % 3 AS VARCHAR) END AS category,
       'n' || CAST(id % 5 AS VARCHAR) || 'x' AS name,
       CAST(id AS DECIMAL(10, 2)) * 1.25 AS price,
       CASE WHEN id % 11 = 0 THEN NULL ELSE to_timestamp_seconds(-93600 + id * 18000) END AS ts,
       CAST(to_timestamp_seconds(-4060800 + id * 13 * 86400) AS DATE) AS d,
       to_timestamp_seconds(1709251200 + id * 2220) AS tz
FROM (SELECT unnest(range(0, 60)) AS id)"""


@pytest.fixture(scope="module")
def lake(osprey, tmp_path_factory):
    """A pyiceberg SqlCatalog `parts` on SQLite, attached to Osprey as `p`."""
    root = tmp_path_factory.mktemp("iceberg-partitioned")
    with attached_sql_catalog(osprey, root, "parts", "p") as catalog:
        yield catalog


def internal(value, iceberg_type):
    """A Python value as pyiceberg's transforms take it (micros, days)."""
    if value is None:
        return None
    if isinstance(iceberg_type, (TimestampType, TimestamptzType)):
        return datetime_to_micros(value)
    if isinstance(iceberg_type, DateType):
        return date_to_days(value)
    return value


def check_partition_tuples(table):
    """Every data file's partition tuple is pyiceberg's transform of each of its rows."""
    spec = table.spec()
    schema = table.schema()
    files = [task.file for task in table.scan().plan_files()]
    assert files
    for file in files:
        # ParquetFile, not read_table: a path like `category=c1/` must not read as a Hive partition.
        rows = pq.ParquetFile(file.file_path.removeprefix("file://")).read().to_pylist()
        assert len(rows) == file.record_count
        expected = set()
        for row in rows:
            values = []
            for field in spec.fields:
                source = schema.find_field(field.source_id)
                value = internal(row[source.name], source.field_type)
                values.append(field.transform.transform(source.field_type)(value))
            expected.add(tuple(values))
        assert expected == {tuple(file.partition[i] for i in range(len(spec.fields)))}, file.file_path
    return files


def distinct_partitions(files):
    return len({tuple(f.partition[i] for i in range(len(f.partition))) for f in files})


def test_every_transform_partitions_what_osprey_writes(osprey, lake):
    table = lake.create_table("db.events", SCHEMA, partition_spec=SPEC)
    written = run(osprey, f"INSERT INTO p.db.events {ROWS}")
    assert written.num_rows == 1
    table = table.refresh()
    files = check_partition_tuples(table)
    assert len(files) == distinct_partitions(files)

    # pyiceberg reads what Osprey reads.
    theirs = table.scan().to_arrow().sort_by("id")
    ours = run(osprey, "SELECT * FROM p.db.events ORDER BY id")
    assert theirs.num_rows == 60
    for name in ("id", "category", "name", "price", "ts", "d"):
        assert theirs.column(name).to_pylist() == ours.column(name).to_pylist(), name

    # pyiceberg prunes by the partition values and the manifest list's field summaries.
    c1 = list(table.scan(row_filter="category == 'c1'").plan_files())
    assert c1 and all(task.file.partition[0] == "c1" for task in c1)
    assert len(table.scan(row_filter="category == 'zz'").plan_files()) == 0
    summaries = table.current_snapshot().manifests(table.io)[0].partitions
    assert summaries[0].contains_null is True  # category is NULL for every 7th id
    assert summaries[2].lower_bound is not None and summaries[2].upper_bound is not None

    # Osprey prunes by them too.
    plan = str(run(osprey, "EXPLAIN SELECT * FROM p.db.events WHERE category = 'c1'").to_pylist())
    assert f"data files {len(c1)} of {len(files)}" in plan, plan
    got = run(osprey, "SELECT count(*) AS n FROM p.db.events WHERE category = 'c1'").to_pylist()
    assert got == [{"n": sum(1 for i in range(60) if i % 7 != 0 and i % 3 == 1)}]

    # pyiceberg appends its own partitioned files on top; Osprey sees every row.
    table.append(pa.Table.from_pylist([{
        "id": 1000, "category": "c1", "name": "py", "price": decimal.Decimal("1.00"),
        "ts": datetime.datetime(2024, 1, 1), "d": datetime.date(2024, 1, 1),
        "tz": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)}], schema=SCHEMA.as_arrow()))
    assert run(osprey, "SELECT count(*) AS n FROM p.db.events").to_pylist() == [{"n": 61}]
    run(osprey, "INSERT INTO p.db.events SELECT id + 2000 AS id, category, name, price, ts, d, tz "
                "FROM p.db.events WHERE id < 10")
    check_partition_tuples(lake.load_table("db.events"))
    assert run(osprey, "SELECT count(*) AS n FROM p.db.events").to_pylist() == [{"n": 71}]


def test_create_table_with_partitioning_and_ctas(osprey, lake):
    run(osprey, "CREATE TABLE p.db.orders (id BIGINT NOT NULL, region VARCHAR, placed TIMESTAMP) "
                "WITH (format = 'PARQUET', format_version = 2, "
                "partitioning = ARRAY['region', 'year(placed)', 'bucket(id, 8)'])")
    table = lake.load_table("db.orders")
    assert [(f.name, str(f.transform), f.field_id) for f in table.spec().fields] == [
        ("region", "identity", 1000), ("placed_year", "year", 1001), ("id_bucket", "bucket[8]", 1002)]
    run(osprey, "INSERT INTO p.db.orders SELECT id, CASE WHEN id % 2 = 0 THEN 'eu' ELSE 'us' END AS region, "
                "to_timestamp_seconds(1704067200 + id * 3 * 86400) AS placed "
                "FROM (SELECT unnest(range(0, 40)) AS id)")
    check_partition_tuples(lake.load_table("db.orders"))

    # CTAS in Spark's spelling of the transforms. The source's many files are read by many
    # tasks (tiny scan tasks); the rows are shuffled by partition, so each partition is
    # written by one task, into one file.
    run(osprey, "CREATE TABLE p.db.by_year WITH (partitioning = ARRAY['years(placed)', 'truncate(1, region)']) "
                "AS SELECT id, region, placed FROM p.db.orders")
    by_year = lake.load_table("db.by_year")
    assert [str(f.transform) for f in by_year.spec().fields] == ["year", "truncate[1]"]
    files = check_partition_tuples(by_year)
    assert distinct_partitions(files) == 2 and len(files) == 2
    assert len(by_year.scan().to_arrow()) == 40

    # Bad partitioning is refused by name, and nothing is created.
    message = error_of(osprey, "CREATE TABLE p.db.bad (id BIGINT) WITH (partitioning = ARRAY['day(id)'])")
    assert "day of a long column" in message, message
    message = error_of(osprey, "CREATE TABLE p.db.bad (id BIGINT) WITH (partitioning = ARRAY['nope'])")
    assert "nope" in message, message
    message = error_of(osprey, "CREATE TABLE p.db.bad (id BIGINT) WITH (format_version = 1)")
    assert "format versions 2 and 3" in message, message
    message = error_of(osprey, "CREATE TABLE p.db.bad (id BIGINT) WITH (colour = 'red')")
    assert "unknown table property colour" in message, message
    assert "bad" not in [name for _, name in lake.list_tables("db")]
