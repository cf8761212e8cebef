"""Merge-on-read deletes for test tables, written as the Iceberg spec says.

pyiceberg writes only copy-on-write deletes, so this test code writes the delete files itself
(Parquet, with the spec's field ids) and commits them as a `delete` snapshot: a delete manifest
written with pyiceberg's Avro manifest writer, a manifest list that keeps the parent's
manifests, and the snapshot added through a pyiceberg transaction (the catalog's own
compare-and-swap). pyiceberg then reads position deletes back, which checks the files from the
other side; it cannot read equality deletes, so those tests compute the expected rows.
"""

import random
import time
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.manifest import (DataFile, DataFileContent, FileFormat, ManifestContent,
                                ManifestEntry, ManifestEntryStatus, ManifestWriterV2,
                                write_manifest_list)
from pyiceberg.table.snapshots import Operation, Snapshot, Summary
from pyiceberg.table.update import AddSnapshotUpdate, AssertRefSnapshotId, SetSnapshotRefUpdate
from pyiceberg.typedef import Record

# The reserved field ids of a position delete file's columns.
FILE_PATH_ID = 2147483546
POS_ID = 2147483545


class DeleteManifestWriter(ManifestWriterV2):
    """pyiceberg's v2 manifest writer, for a manifest of delete files."""

    def content(self):
        return ManifestContent.DELETES

    @property
    def _meta(self):
        return {**super()._meta, "content": "deletes"}


def _field(name, type_, field_id, nullable=False):
    return pa.field(name, type_, nullable=nullable,
                    metadata={b"PARQUET:field_id": str(field_id).encode()})


def _write(table, name, arrow_table):
    path = f"{table.location()}/data/{name}-{uuid.uuid4()}.parquet"
    local = path.removeprefix("file://")
    pq.write_table(arrow_table, local)
    return path, pa.fs.LocalFileSystem().get_file_info(local).size


def position_delete_file(table, deletes):
    """A position delete file deleting `deletes`: (data file path, row position) pairs."""
    deletes = sorted(deletes)
    schema = pa.schema([_field("file_path", pa.string(), FILE_PATH_ID),
                        _field("pos", pa.int64(), POS_ID)])
    arrow = pa.table({"file_path": [d[0] for d in deletes], "pos": [d[1] for d in deletes]},
                     schema=schema)
    path, size = _write(table, "pos-deletes", arrow)
    return DataFile.from_args(
        content=DataFileContent.POSITION_DELETES, file_path=path,
        file_format=FileFormat.PARQUET, partition=Record(), record_count=len(deletes),
        file_size_in_bytes=size)


def equality_delete_file(table, columns: dict, partition=None):
    """An equality delete file over `columns` (name: list of values), typed as the table."""
    schema = table.schema()
    fields = [schema.find_field(name) for name in columns]
    arrow_schema = table.schema().as_arrow()
    arrow = pa.table(
        {name: pa.array(values, type=arrow_schema.field(name).type)
         for name, values in columns.items()},
        schema=pa.schema([_field(f.name, arrow_schema.field(f.name).type, f.field_id, True)
                          for f in fields]))
    path, size = _write(table, "eq-deletes", arrow)
    return DataFile.from_args(
        content=DataFileContent.EQUALITY_DELETES, file_path=path,
        file_format=FileFormat.PARQUET, partition=partition or Record(),
        record_count=arrow.num_rows, file_size_in_bytes=size,
        equality_ids=[f.field_id for f in fields])


def commit_deletes(catalog, identifier, delete_files):
    """Commits `delete_files` as one `delete` snapshot of `identifier`'s main branch."""
    table = catalog.load_table(identifier)
    parent = table.current_snapshot()
    snapshot_id = random.randint(1, 2**62)
    sequence_number = table.metadata.last_sequence_number + 1
    metadata_dir = f"{table.location()}/metadata"
    writer = DeleteManifestWriter(table.spec(), table.schema(),
                                  table.io.new_output(f"{metadata_dir}/{uuid.uuid4()}-m0.avro"),
                                  snapshot_id, "deflate")
    with writer:
        for delete in delete_files:
            writer.add(ManifestEntry.from_args(status=ManifestEntryStatus.ADDED,
                                               snapshot_id=snapshot_id, data_file=delete))
    manifests = list(parent.manifests(table.io)) + [writer.to_manifest_file()]
    list_path = f"{metadata_dir}/snap-{snapshot_id}-{uuid.uuid4()}.avro"
    with write_manifest_list(2, table.io.new_output(list_path), snapshot_id,
                             parent.snapshot_id, sequence_number, "deflate") as lists:
        lists.add_manifests(manifests)
    snapshot = Snapshot(snapshot_id=snapshot_id, parent_snapshot_id=parent.snapshot_id,
                        sequence_number=sequence_number, timestamp_ms=int(time.time() * 1000),
                        manifest_list=list_path, summary=Summary(Operation.DELETE),
                        schema_id=table.schema().schema_id)
    with table.transaction() as transaction:
        transaction._apply(
            (AddSnapshotUpdate(snapshot=snapshot),
             SetSnapshotRefUpdate(snapshot_id=snapshot_id, ref_name="main", type="branch")),
            (AssertRefSnapshotId(snapshot_id=parent.snapshot_id, ref="main"),))
    return catalog.load_table(identifier)


def data_files(table):
    """The current snapshot's data files, by path, with their row counts."""
    return {task.file.file_path: task.file.record_count for task in table.scan().plan_files()}
