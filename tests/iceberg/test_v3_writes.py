"""Format-3 Iceberg tables written by Osprey: row lineage (each snapshot's `first-row-id` and
`added-rows`, the table's `next-row-id`), and merge-on-read deletes as deletion vectors in
Puffin files, one per data file, merged with the vector a file already has. pyiceberg (the
independent reader) reads every change, and its rows equal Osprey's."""

import pyarrow.parquet as pq
import pytest
from pyiceberg.avro.file import AvroFile
from pyiceberg.manifest import (DATA_FILE_TYPE, MANIFEST_ENTRY_SCHEMAS, MANIFEST_LIST_FILE_SCHEMAS,
                                DataFile, DataFileContent, FileFormat, ManifestContent,
                                ManifestEntry, ManifestEntryStatus, ManifestFile,
                                PartitionFieldSummary)

from conftest import attached_sql_catalog, column, connect, error_of, run


@pytest.fixture(scope="module")
def lake(osprey, tmp_path_factory):
    """A pyiceberg SqlCatalog `three` on SQLite, attached to Osprey as `v3`."""
    root = tmp_path_factory.mktemp("iceberg-v3")
    with attached_sql_catalog(osprey, root, "three", "v3") as catalog:
        yield catalog


def ids(osprey, lake, name):
    """The ids, as Osprey and pyiceberg read them (they must agree)."""
    ours = column(run(osprey, f"SELECT id FROM v3.db.{name} ORDER BY id"), "id")
    theirs = sorted(column(lake.load_table(f"db.{name}").scan().to_arrow(), "id"))
    assert ours == theirs
    return ours


DATA_FIELDS = [field.name for field in DATA_FILE_TYPE[3].fields]


def live_entries(table, manifest_path, with_sequence=False):
    """The live entries of a manifest, each file's fields by name (after the entry's data
    sequence number, `with_sequence`), read with pyiceberg's own format-3 entry schema (its
    scans read manifests with the format-2 schema, which has no deletion vector or row lineage
    fields)."""
    with AvroFile[ManifestEntry](
        table.io.new_input(manifest_path), MANIFEST_ENTRY_SCHEMAS[3],
        read_types={-1: ManifestEntry, 2: DataFile},
        read_enums={0: ManifestEntryStatus, 101: FileFormat, 134: DataFileContent},
    ) as reader:
        for entry in reader:
            if entry.status != ManifestEntryStatus.DELETED:
                fields = dict(zip(DATA_FIELDS, entry.data_file._data))
                yield (entry.sequence_number, fields) if with_sequence else fields


def live_vectors(table):
    """The live delete files of the current snapshot: (referenced data file, file format,
    record count, content offset, length)."""
    vectors = []
    for manifest in table.current_snapshot().manifests(table.io):
        if manifest.content != ManifestContent.DELETES:
            continue
        for file in live_entries(table, manifest.manifest_path):
            vectors.append((file["referenced_data_file"], file["file_format"].value,
                            file["record_count"], file["content_offset"],
                            file["content_size_in_bytes"]))
    return vectors


def check_one_vector_per_file(table):
    """Each data file has at most one live deletion vector, in a Puffin file; answers their
    cardinalities by data file."""
    vectors = live_vectors(table)
    data_files = {task.file.file_path for task in table.scan().plan_files()}
    seen = {}
    for data_file, file_format, cardinality, offset, length in vectors:
        assert file_format == "PUFFIN" and offset is not None and length > 0
        assert data_file not in seen, f"two vectors for {data_file}"
        seen[data_file] = cardinality
    # A vector of a data file still live (a removed file's vector leaves with it).
    assert set(seen) <= data_files
    return seen


def test_row_lineage_and_deletion_vectors(osprey, lake):
    run(osprey, "CREATE TABLE v3.db.t (id BIGINT, part VARCHAR) "
                "WITH (format_version = 3, partitioning = ARRAY['part'])")
    table = lake.load_table("db.t")
    assert table.format_version == 3 and table.metadata.next_row_id == 0

    run(osprey, "INSERT INTO v3.db.t SELECT id, 'p' || CAST(id % 2 AS VARCHAR) "
                "FROM (SELECT unnest(range(0, 10)) AS id)")
    run(osprey, "INSERT INTO v3.db.t VALUES (100, 'p0'), (101, 'p1')")
    table = lake.load_table("db.t")
    first, second = sorted(table.snapshots(), key=lambda s: s.sequence_number)
    assert (first.first_row_id, first.added_rows) == (0, 10)
    assert (second.first_row_id, second.added_rows) == (10, 2)
    assert table.metadata.next_row_id == 12
    assert ids(osprey, lake, "t") == list(range(10)) + [100, 101]

    # A DELETE writes deletion vectors, one per data file it touches.
    run(osprey, "DELETE FROM v3.db.t WHERE id IN (2, 4, 5)")
    assert sorted(check_one_vector_per_file(lake.load_table("db.t")).values()) == [1, 2]
    assert ids(osprey, lake, "t") == [0, 1, 3, 6, 7, 8, 9, 100, 101]

    # A second DELETE on the same files merges with their vectors: still one per file.
    run(osprey, "DELETE FROM v3.db.t WHERE id IN (6, 7)")
    assert sorted(check_one_vector_per_file(lake.load_table("db.t")).values()) == [2, 3]
    assert ids(osprey, lake, "t") == [0, 1, 3, 8, 9, 100, 101]

    # UPDATE and MERGE write vectors too.
    run(osprey, "UPDATE v3.db.t SET id = id + 1000 WHERE id IN (0, 101)")
    run(osprey, "MERGE INTO v3.db.t AS t USING (SELECT 3 AS id UNION ALL SELECT 55) AS s "
                "ON t.id = s.id WHEN MATCHED THEN DELETE "
                "WHEN NOT MATCHED THEN INSERT VALUES (s.id, 'p1')")
    assert ids(osprey, lake, "t") == [1, 8, 9, 55, 100, 1000, 1101]
    table = lake.load_table("db.t")
    check_one_vector_per_file(table)
    assert table.metadata.next_row_id == sum(s.added_rows for s in table.snapshots())


def live_data_files(table):
    """Each live data file of the current snapshot: (path, first row id, data sequence number),
    the row id as the spec's "First Row ID Inheritance" gives it: the file's own, else its
    manifest's plus the record counts of the live files before it that have none (test code
    that follows the spec, with pyiceberg's format-3 schemas)."""
    list_fields = [field.name for field in MANIFEST_LIST_FILE_SCHEMAS[3].fields]
    with AvroFile[ManifestFile](
        table.io.new_input(table.current_snapshot().manifest_list), MANIFEST_LIST_FILE_SCHEMAS[3],
        read_types={-1: ManifestFile, 508: PartitionFieldSummary},
        read_enums={517: ManifestContent},
    ) as reader:
        manifests = list(reader)
    for manifest in manifests:
        if manifest.content != ManifestContent.DATA:
            continue
        next_id = manifest._data[list_fields.index("first_row_id")]
        for sequence, file in live_entries(table, manifest.manifest_path, with_sequence=True):
            first = file["first_row_id"]
            if first is None and next_id is not None:
                first, next_id = next_id, next_id + file["record_count"]
            # An added entry's null sequence number is its manifest's.
            yield file["file_path"], first, manifest.sequence_number if sequence is None \
                else sequence


def file_row_ids(table):
    """Each live data file's first row id (see `live_data_files`)."""
    return {path: first for path, first, _ in live_data_files(table)}


def row_lineage(table):
    """Each row's (row id, last updated sequence number) by its `id`, as the spec says a reader
    gives them: the values the data file stores, else its first row id plus the row's position
    and its data sequence number. Rows deleted by a vector are included: callers look up the
    live ones."""
    lineage = {}
    for path, first, sequence in live_data_files(table):
        with table.io.new_input(path).open() as stream:
            rows = pq.read_table(stream)
        stored = set(rows.column_names)
        # Stored lineage is found by its reserved field ids, as readers look columns up.
        for name, field_id in (("_row_id", b"2147483540"),
                               ("_last_updated_sequence_number", b"2147483539")):
            if name in stored:
                assert rows.schema.field(name).metadata[b"PARQUET:field_id"] == field_id
        for position, row in enumerate(rows.to_pylist()):
            row_id = row.get("_row_id") if "_row_id" in stored else None
            updated = row.get("_last_updated_sequence_number")
            lineage[row["id"]] = (first + position if row_id is None else row_id,
                                  sequence if updated is None else updated)
    return lineage


def test_rewrites_of_manifests_keep_every_files_row_ids(osprey, lake):
    run(osprey, "CREATE TABLE v3.db.keep (id BIGINT, part VARCHAR) "
                "WITH (format_version = 3, partitioning = ARRAY['part'])")
    for n in range(4):
        run(osprey, f"INSERT INTO v3.db.keep VALUES ({n}, 'a'), ({n + 10}, 'b')")
    before = file_row_ids(lake.load_table("db.keep"))
    assert len(before) == 8 and None not in before.values()
    # Row id ranges do not overlap.
    assert len(set(before.values())) == 8

    figures = run(osprey, "ALTER TABLE v3.db.keep EXECUTE rewrite_manifests")
    assert column(figures, "rewritten_manifests_count") == [4]
    table = lake.load_table("db.keep")
    assert len(table.current_snapshot().manifests(table.io)) == 1
    assert file_row_ids(table) == before
    assert ids(osprey, lake, "keep") == [0, 1, 2, 3, 10, 11, 12, 13]

    # Dynamic overwrite keeps the files of the partitions it does not write, ids and all; the
    # new files get ids past every earlier one.
    with connect(osprey) as conn, conn.cursor() as cur:
        cur.execute("SET osprey.partition_overwrite_mode = 'dynamic'")
        cur.fetchall()
        cur.execute("INSERT OVERWRITE v3.db.keep VALUES (99, 'a')")
        cur.fetchall()
    table = lake.load_table("db.keep")
    after = file_row_ids(table)
    kept = {path: first for path, first in before.items() if path in after}
    assert len(kept) == 4 and all(after[path] == first for path, first in kept.items())
    (new,) = [first for path, first in after.items() if path not in before]
    assert new >= max(before.values()) + 1
    assert ids(osprey, lake, "keep") == [10, 11, 12, 13, 99]


def test_copied_rows_keep_their_row_ids(osprey, lake):
    """Copy-on-write changes and `optimize` copy rows into new files: a copied row keeps its
    row id and its last updated sequence number; a changed row is a new row, with a new id."""
    run(osprey, "CREATE TABLE v3.db.cow (id BIGINT, part VARCHAR) "
                "WITH (format_version = 3, partitioning = ARRAY['part'])")
    for start in (0, 10, 20):
        run(osprey, f"INSERT INTO v3.db.cow SELECT id, 'p' || CAST(id % 2 AS VARCHAR) "
                    f"FROM (SELECT unnest(range({start}, {start + 5})) AS id)")
    original = row_lineage(lake.load_table("db.cow"))
    assert sorted(row_id for row_id, _ in original.values()) == list(range(15))

    def check(expected_ids, changed=()):
        """The live rows are `expected_ids`; all but `changed` kept their lineage, and the
        `changed` ones have ids no other row has had."""
        table = lake.load_table("db.cow")
        assert ids(osprey, lake, "cow") == expected_ids
        lineage = row_lineage(table)
        live = {id_: lineage[id_] for id_ in expected_ids}
        assert len({row_id for row_id, _ in live.values()}) == len(live)
        for id_, (row_id, updated) in live.items():
            if id_ in changed:
                assert row_id >= 15 and updated == table.current_snapshot().sequence_number
            else:
                assert (row_id, updated) == original[id_], id_
        return table

    run(osprey, "ALTER TABLE v3.db.cow SET PROPERTIES \"write.delete.mode\" = 'copy-on-write', "
                "\"write.update.mode\" = 'copy-on-write'")
    run(osprey, "DELETE FROM v3.db.cow WHERE id = 12")
    table = check([0, 1, 2, 3, 4, 10, 11, 13, 14, 20, 21, 22, 23, 24])
    # Copy-on-write wrote no deletion vector: the file was rewritten.
    assert live_vectors(table) == []

    run(osprey, "UPDATE v3.db.cow SET id = 100 WHERE id = 1")
    check([0, 2, 3, 4, 10, 11, 13, 14, 20, 21, 22, 23, 24, 100], changed={100})
    lineage_100 = row_lineage(lake.load_table("db.cow"))[100]

    # A merge-on-read delete, then optimize folds its vector in: the rows copied keep their ids.
    run(osprey, "ALTER TABLE v3.db.cow SET PROPERTIES \"write.delete.mode\" = 'merge-on-read'")
    run(osprey, "DELETE FROM v3.db.cow WHERE id = 21")
    assert len(live_vectors(lake.load_table("db.cow"))) == 1
    original[100] = lineage_100
    figures = run(osprey, "ALTER TABLE v3.db.cow EXECUTE optimize")
    assert column(figures, "rewritten_data_files_count")[0] >= 2
    table = check([0, 2, 3, 4, 10, 11, 13, 14, 20, 22, 23, 24, 100])
    assert live_vectors(table) == []
    assert len(file_row_ids(table)) == 2  # one file per partition
    # Every copied row's id is stored in its new file; next-row-id still counts every row.
    assert table.metadata.next_row_id == sum(s.added_rows for s in table.snapshots())


def test_format_4_is_refused(osprey, lake):
    assert "format versions 2 and 3" in error_of(
        osprey, "CREATE TABLE v3.db.four (id BIGINT) WITH (format_version = 4)")


def test_a_format_2_table_is_upgraded_to_3(osprey, lake):
    run(osprey, "CREATE TABLE v3.db.up (id BIGINT, part VARCHAR) "
                "WITH (partitioning = ARRAY['part'])")
    run(osprey, "INSERT INTO v3.db.up VALUES (1, 'a'), (2, 'a'), (3, 'b'), (4, 'b')")
    # A format-2 delete: a file-scoped position delete file.
    run(osprey, "DELETE FROM v3.db.up WHERE id = 1")
    assert lake.load_table("db.up").format_version == 2
    assert "never downgraded" in error_of(
        osprey, "ALTER TABLE v3.db.up SET PROPERTIES format_version = 1")

    run(osprey, "ALTER TABLE v3.db.up SET PROPERTIES format_version = 3")
    table = lake.load_table("db.up")
    assert table.format_version == 3 and table.metadata.next_row_id == 0
    assert ids(osprey, lake, "up") == [2, 3, 4]
    # Upgrading again changes nothing.
    run(osprey, "ALTER TABLE v3.db.up SET PROPERTIES format_version = 3")
    assert len(lake.load_table("db.up").metadata.metadata_log) == len(table.metadata.metadata_log)

    # The next commit gives the files written before the upgrade their row ids, and a delete
    # in a file that had format-2 position deletes writes one vector holding both.
    run(osprey, "INSERT INTO v3.db.up VALUES (5, 'a')")
    table = lake.load_table("db.up")
    latest = table.current_snapshot()
    # Its row ids cover the four rows written before the upgrade and the new one.
    assert (latest.first_row_id, latest.added_rows, table.metadata.next_row_id) == (0, 5, 5)
    run(osprey, "DELETE FROM v3.db.up WHERE id = 2")
    assert ids(osprey, lake, "up") == [3, 4, 5]
    assert sorted(check_one_vector_per_file(lake.load_table("db.up")).values()) == [2]


def test_an_upgrade_waits_for_partition_scoped_deletes_to_be_folded(osprey, lake):
    import pyarrow as pa
    from delete_writer import commit_deletes, data_files, position_delete_file

    table = lake.create_table("db.upx", schema=pa.schema([("id", pa.int64())]))
    table.append(pa.table({"id": pa.array([1, 2, 3], pa.int64())}))
    # Another engine's format-2 delete: a position delete file that names no data file.
    path = next(iter(data_files(table)))
    commit_deletes(lake, "db.upx", [position_delete_file(table, [(path, 0)])])
    assert "optimize" in error_of(osprey, "ALTER TABLE v3.db.upx SET PROPERTIES format_version = 3")
    assert lake.load_table("db.upx").format_version == 2
    run(osprey, "ALTER TABLE v3.db.upx EXECUTE optimize")
    run(osprey, "ALTER TABLE v3.db.upx SET PROPERTIES format_version = 3")
    assert lake.load_table("db.upx").format_version == 3
    assert ids(osprey, lake, "upx") == [2, 3]
