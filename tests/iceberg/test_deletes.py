"""Merge-on-read deletes: position deletes and equality deletes (format v2), applied on the
executors that read the data files. The delete files come from `delete_writer` (test code
following the spec); pyiceberg reads the position deletes back as the reference."""

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.schema import Schema
from pyiceberg.table import StaticTable
from pyiceberg.types import LongType, NestedField, StringType

from conftest import register, run, table_dir
from delete_writer import (commit_deletes, data_files, deletion_vector_file, equality_delete_file,
                           position_delete_file, write_v3_with_deletes)

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=True),
    NestedField(2, "name", StringType()),
    NestedField(3, "team", StringType()),
)


def batch(table, ids):
    return pa.Table.from_pylist(
        [{"id": i, "name": f"n-{i}", "team": ["a", "b", "c"][i % 3]} for i in ids],
        schema=table.schema().as_arrow())


def ids_in(path):
    """The ids of a data file, in row order (row position = index)."""
    return pq.read_table(path.removeprefix("file://"), columns=["id"]).column(0).to_pylist()


def osprey_ids(osprey, sql):
    return sorted(row["id"] for row in run(osprey, sql).to_pylist())


def test_position_deletes_skip_their_rows(osprey, catalog):
    table = catalog.create_table("db.positions", schema=SCHEMA, properties={"format-version": "2"})
    for start in (0, 100, 200):
        table.append(batch(table, range(start, start + 30)))
    files = sorted(data_files(catalog.load_table("db.positions")))
    deleted = [(files[0], 0), (files[0], 3), (files[0], 29), (files[1], 7)]
    table = commit_deletes(catalog, "db.positions", [position_delete_file(table, deleted)])
    gone = {ids_in(path)[pos] for path, pos in deleted}

    expected = sorted(row["id"] for row in table.scan().to_arrow().to_pylist())
    assert len(expected) == 90 - len(gone) and not gone & set(expected)
    register(osprey, "positions", table_dir(table))
    assert osprey_ids(osprey, "SELECT id FROM lake.positions") == expected
    assert run(osprey, "SELECT count(*) AS n FROM lake.positions").to_pylist() == [
        {"n": len(expected)}]
    assert osprey_ids(osprey, "SELECT id FROM lake.positions WHERE id < 10") == [
        i for i in expected if i < 10]
    limited = run(osprey, "SELECT id FROM lake.positions WHERE id < 100 LIMIT 5").to_pylist()
    assert len(limited) == 5 and not {row["id"] for row in limited} & gone


def test_equality_deletes_drop_equal_rows_written_before_them(osprey, catalog):
    table = catalog.create_table("db.equality", schema=SCHEMA, properties={"format-version": "2"})
    table.append(batch(table, range(0, 20)))
    table.append(batch(table, range(20, 40)))
    table = commit_deletes(catalog, "db.equality", [
        equality_delete_file(table, {"name": ["n-3", "n-25", "nobody"]}),
        equality_delete_file(table, {"id": [7, 8], "team": ["b", "x"]}),
    ])
    # Rows written after the delete are not deleted by it, even when equal.
    table.append(pa.Table.from_pylist([{"id": 1000, "name": "n-3", "team": "a"}],
                                      schema=table.schema().as_arrow()))
    # id 7 is team b (7 % 3 == 1): deleted; id 8 is team c, not x: kept.
    expected = sorted(set(range(40)) - {3, 25, 7} | {1000})
    register(osprey, "equality", table_dir(table))
    assert osprey_ids(osprey, "SELECT id FROM lake.equality") == expected
    assert osprey_ids(osprey, "SELECT * FROM lake.equality") == expected
    assert run(osprey, "SELECT count(*) AS n FROM lake.equality").to_pylist() == [
        {"n": len(expected)}]
    got = run(osprey, "SELECT team, count(*) AS n FROM lake.equality GROUP BY team "
                      "ORDER BY team").to_pylist()
    teams = {}
    for i in expected:
        team = "a" if i == 1000 else ["a", "b", "c"][i % 3]
        teams[team] = teams.get(team, 0) + 1
    assert [(row["team"], row["n"]) for row in got] == sorted(teams.items())

    # Osprey's own DELETE on top: rows already deleted by equality are neither counted nor
    # deleted twice, and its positions are the files' own (equality deletes hide rows, they do
    # not move them).
    uri = catalog.properties["uri"]  # sqlite:///<path>, the form Osprey takes too
    run(osprey, f"CREATE CATALOG eq USING iceberg WITH (type = 'sql', uri = '{uri}', "
                "catalog_name = 'lake')")
    try:
        count = run(osprey, "DELETE FROM eq.db.equality WHERE id < 12").to_pylist()[0]
        assert list(count.values()) == [len([i for i in expected if i < 12])]
        assert osprey_ids(osprey, "SELECT id FROM eq.db.equality") == [i for i in expected if i >= 12]
    finally:
        run(osprey, "DROP CATALOG eq")


def test_deletion_vectors_skip_their_rows(osprey, catalog):
    table = catalog.create_table("db.vectors", schema=SCHEMA, properties={"format-version": "2"})
    table.append(batch(table, range(0, 50)))
    table.append(batch(table, range(50, 100)))
    table = catalog.load_table("db.vectors")
    counts = data_files(table)
    first = sorted(counts)[0]
    positions = [1, 2, 10, 49]
    location = write_v3_with_deletes(
        table, [deletion_vector_file(table, first, counts[first], positions)])
    v3 = StaticTable.from_metadata(location)
    assert v3.format_version == 3
    gone = {ids_in(first)[pos] for pos in positions}
    expected = sorted(row["id"] for row in v3.scan().to_arrow().to_pylist())
    assert len(expected) == 100 - len(gone) and not gone & set(expected)
    register(osprey, "vectors", location.removeprefix("file://"))
    assert osprey_ids(osprey, "SELECT id FROM lake.vectors") == expected
