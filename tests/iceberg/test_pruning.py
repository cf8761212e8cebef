"""Osprey prunes Iceberg manifests and data files with the query's filters, before opening any
data file: manifests by their partition summaries, files by partition values and column
metrics. The answers stay pyiceberg's own (with the same filter), EXPLAIN says what was left,
and the bytes scanned count only the files left."""

import datetime
import decimal

import pyarrow as pa
import pytest
from pyiceberg.expressions import GreaterThanOrEqual, EqualTo, And, LessThan, IsNull
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import DayTransform, IdentityTransform, TruncateTransform
from pyiceberg.types import (DateType, DecimalType, LongType, NestedField, StringType,
                             TimestampType)

from conftest import register, run

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=True),
    NestedField(2, "region", StringType()),
    NestedField(3, "ts", TimestampType()),
    NestedField(4, "day", DateType()),
    NestedField(5, "amount", DecimalType(12, 2)),
    NestedField(6, "note", StringType()),
)

BASE = datetime.datetime(2024, 3, 1)


def rows(start, count, region):
    return [{
        "id": i,
        "region": region,
        "ts": BASE + datetime.timedelta(hours=6 * i),
        "day": (BASE + datetime.timedelta(hours=6 * i)).date(),
        "amount": decimal.Decimal(i) / 4,
        "note": None if i % 7 == 0 else f"note {i:05d}",
    } for i in range(start, start + count)]


def explain(uri, sql):
    plan = run(uri, f"EXPLAIN {sql}").to_pylist()
    return "\n".join(str(row.get("plan", "")) for row in plan)


def pruning_of(uri, sql):
    """The (manifests read, manifests, files kept, files read) EXPLAIN reports."""
    text = explain(uri, sql)
    marker = "iceberg_pruning=[data manifests "
    assert marker in text, text
    summary = text.split(marker, 1)[1].split("]", 1)[0]
    words = summary.replace(",", "").split()
    # "<m> of <M> data files <f> of <F> in them"
    return int(words[0]), int(words[2]), int(words[5]), int(words[7])


@pytest.fixture(scope="module")
def pruned(osprey, catalog):
    """`db.pruned`, partitioned by day(ts) and region, written in four appends (four
    manifests), each a few days of one region; and `db.flat`, unpartitioned, whose appends
    hold disjoint id ranges."""
    spec = PartitionSpec(
        PartitionField(source_id=3, field_id=1000, transform=DayTransform(), name="ts_day"),
        PartitionField(source_id=2, field_id=1001, transform=IdentityTransform(), name="region"),
    )
    table = catalog.create_table("db.pruned", SCHEMA, partition_spec=spec)
    for start, region in [(0, "eu"), (40, "us"), (80, "eu"), (120, "apac")]:
        table.append(pa.Table.from_pylist(rows(start, 40, region), schema=SCHEMA.as_arrow()))
    flat = catalog.create_table("db.flat", SCHEMA,
                                partition_spec=PartitionSpec(PartitionField(
                                    source_id=6, field_id=1000, transform=TruncateTransform(4),
                                    name="note_trunc")))
    for start in range(0, 400, 100):
        flat.append(pa.Table.from_pylist(rows(start, 100, "eu"), schema=SCHEMA.as_arrow()))
    register(osprey, "pruned", table.location())
    register(osprey, "flat", flat.location())
    return table, flat


def same(uri, sql, table, row_filter, columns=("id",)):
    got = sorted(tuple(r[c] for c in columns) for r in run(uri, sql).to_pylist())
    expected = sorted(tuple(r[c] for c in columns)
                      for r in table.scan(row_filter=row_filter).to_arrow().to_pylist())
    assert got == expected, sql
    return got


def test_partition_filters_prune_manifests_and_files(osprey, pruned):
    table, _ = pruned
    # Days of the last append only: three manifests are skipped unread.
    since = BASE + datetime.timedelta(hours=6 * 125)
    sql = f"SELECT id FROM lake.pruned WHERE ts >= TIMESTAMP '{since:%Y-%m-%d %H:%M:%S}'"
    got = same(osprey, sql, table, GreaterThanOrEqual("ts", since.isoformat()))
    assert got and min(got)[0] >= 125
    read, manifests, kept, files = pruning_of(osprey, sql)
    assert (read, manifests) == (1, 4)
    assert kept < files

    # An identity partition: only the two "eu" appends' manifests are read.
    sql = "SELECT id FROM lake.pruned WHERE region = 'eu'"
    same(osprey, sql, table, EqualTo("region", "eu"))
    read, manifests, _, _ = pruning_of(osprey, sql)
    assert (read, manifests) == (2, 4)

    # SHOW CREATE TABLE gives the partitioning, in Trino's spelling.
    shown = run(osprey, "SHOW CREATE TABLE lake.pruned").to_pylist()[0]["definition"]
    assert "-- partitioning = ARRAY['day(ts)', 'region']" in shown, shown

    # Nothing matches: nothing is read, and the answer is empty.
    sql = "SELECT id FROM lake.pruned WHERE region = 'mars'"
    assert same(osprey, sql, table, EqualTo("region", "mars")) == []
    assert pruning_of(osprey, sql)[0] == 0


def test_column_metrics_prune_files(osprey, pruned):
    _, flat = pruned
    # ids are disjoint per append: the bounds leave one file of four.
    sql = "SELECT id, amount FROM lake.flat WHERE id >= 310 AND id < 320"
    same(osprey, sql, flat, And(GreaterThanOrEqual("id", 310), LessThan("id", 320)), ("id", "amount"))
    read, manifests, kept, files = pruning_of(osprey, sql)
    assert kept < files
    # Decimal, date and string bounds, and null counts, answer as pyiceberg does.
    for sql, row_filter in [
        ("SELECT id FROM lake.flat WHERE amount >= 99.5", GreaterThanOrEqual("amount", decimal.Decimal("99.50"))),
        ("SELECT id FROM lake.flat WHERE day < DATE '2024-03-10'", LessThan("day", "2024-03-10")),
        ("SELECT id FROM lake.flat WHERE note >= 'note 00390'", GreaterThanOrEqual("note", "note 00390")),
        ("SELECT id FROM lake.flat WHERE note IS NULL", IsNull("note")),
    ]:
        same(osprey, sql, flat, row_filter)
    assert pruning_of(osprey, "SELECT id FROM lake.flat WHERE amount >= 99.5")[2] < 4


def test_bytes_scanned_count_only_the_files_left(osprey, pruned):
    every = "SELECT count(note) AS n FROM lake.flat WHERE id >= 0"
    some = "SELECT count(note) AS n FROM lake.flat WHERE id >= 350"
    run(osprey, every)
    run(osprey, some)
    history = run(osprey, "SELECT query, bytes_scanned FROM system.queries").to_pylist()
    scanned = {row["query"]: row["bytes_scanned"] for row in history}
    assert 0 < scanned[some] < scanned[every]


def test_partitions_table_matches_pyiceberg(osprey, pruned):
    table, _ = pruned
    got = run(osprey, 'SELECT partition, record_count, file_count, total_size FROM lake."pruned$partitions"').to_pylist()
    expected = table.inspect.partitions().to_pylist()
    key = lambda p: (str(p["ts_day"]), p["region"])
    assert sorted((key(r["partition"]), r["record_count"], r["file_count"]) for r in got) == \
        sorted((key(r["partition"]), r["record_count"], r["file_count"]) for r in expected)
    assert sum(r["total_size"] for r in got) == sum(r["total_data_file_size_in_bytes"] for r in expected)


def test_count_is_answered_from_the_manifests(osprey, pruned):
    """With no delete files, the manifests' row counts are exact: `count(*)` reads no data
    file, and its answer is pyiceberg's."""
    _, flat = pruned
    plan = explain(osprey, "SELECT count(*) FROM lake.flat")
    assert "DataSourceExec" not in plan, plan
    got = run(osprey, "SELECT count(*) AS n FROM lake.flat").to_pylist()
    assert got == [{"n": len(flat.scan().to_arrow())}]
