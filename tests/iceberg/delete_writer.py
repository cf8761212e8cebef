"""Merge-on-read deletes for test tables, written as the Iceberg spec says.

pyiceberg writes only copy-on-write deletes, so this test code writes the delete files itself
(Parquet, with the spec's field ids) and commits them as a `delete` snapshot: a delete manifest
written with pyiceberg's Avro manifest writer, a manifest list that keeps the parent's
manifests, and the snapshot added through a pyiceberg transaction (the catalog's own
compare-and-swap). pyiceberg then reads position deletes back, which checks the files from the
other side; it cannot read equality deletes, so those tests compute the expected rows.
"""

import json
import random
import struct
import time
import uuid
import zlib

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.manifest import (DataFile, DataFileContent, FileFormat, ManifestContent,
                                ManifestEntry, ManifestEntryStatus, ManifestListWriterV2,
                                ManifestWriterV2, write_manifest_list)
from pyiceberg.avro.file import AvroOutputFile
from pyroaring import BitMap64
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


class DeleteManifestWriterV3(DeleteManifestWriter):
    """The delete manifest writer with the v3 `data_file` fields (deletion vectors need
    `referenced_data_file`, `content_offset` and `content_size_in_bytes`)."""

    @property
    def version(self):
        return 3

    def new_writer(self):
        # pyiceberg binds records with its default (v2) read schema, which would drop the v3
        # fields: write and bind with the v3 schema.
        return AvroOutputFile[ManifestEntry](
            output_file=self._output_file,
            file_schema=self._with_partition(3),
            record_schema=self._with_partition(3),
            schema_name="manifest_entry",
            metadata=self._meta,
        )


class ManifestListWriterV3(ManifestListWriterV2):
    """pyiceberg's v2 manifest list writer, labelled v3 (the v3 list only adds row-lineage
    fields, which are optional)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._meta["format-version"] = "3"


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


PUFFIN_MAGIC = b"PFA1"
VECTOR_MAGIC = bytes([0xD1, 0xD3, 0x39, 0x64])


def deletion_vector_file(table, data_file, record_count, positions):
    """A Puffin file holding one `deletion-vector-v1` blob that deletes `positions` of
    `data_file`: the blob is its length (4 bytes, big-endian), the magic, the portable 64-bit
    roaring bitmap and the CRC-32 of magic and bitmap (big-endian)."""
    bitmap = VECTOR_MAGIC + BitMap64(positions).serialize()
    blob = struct.pack(">I", len(bitmap)) + bitmap + struct.pack(">I", zlib.crc32(bitmap))
    footer = json.dumps({"blobs": [{
        "type": "deletion-vector-v1", "fields": [2147483645], "snapshot-id": -1,
        "sequence-number": -1, "offset": len(PUFFIN_MAGIC), "length": len(blob),
        "properties": {"referenced-data-file": data_file, "cardinality": str(len(positions))},
    }]}).encode()
    puffin = (PUFFIN_MAGIC + blob + PUFFIN_MAGIC + footer + struct.pack("<i", len(footer))
              + bytes(4) + PUFFIN_MAGIC)
    path = f"{table.location()}/data/dv-{uuid.uuid4()}.puffin"
    with open(path.removeprefix("file://"), "wb") as out:
        out.write(puffin)
    return DataFile.from_args(
        3, content=DataFileContent.POSITION_DELETES, file_path=path,
        file_format=FileFormat.PUFFIN, partition=Record(), record_count=len(positions),
        file_size_in_bytes=len(puffin), referenced_data_file=data_file,
        content_offset=len(PUFFIN_MAGIC), content_size_in_bytes=len(blob))


def _write_delete_snapshot(table, delete_files, format_version):
    """Writes the delete manifest and the manifest list of a new `delete` snapshot of
    `table`; returns the snapshot's id, sequence number and manifest list path."""
    parent = table.current_snapshot()
    snapshot_id = random.randint(1, 2**62)
    sequence_number = table.metadata.last_sequence_number + 1
    metadata_dir = f"{table.location()}/metadata"
    manifest_writer = DeleteManifestWriterV3 if format_version == 3 else DeleteManifestWriter
    writer = manifest_writer(table.spec(), table.schema(),
                             table.io.new_output(f"{metadata_dir}/{uuid.uuid4()}-m0.avro"),
                             snapshot_id, "deflate")
    with writer:
        for delete in delete_files:
            writer.add(ManifestEntry.from_args(status=ManifestEntryStatus.ADDED,
                                               snapshot_id=snapshot_id, data_file=delete))
    manifests = list(parent.manifests(table.io)) + [writer.to_manifest_file()]
    list_path = f"{metadata_dir}/snap-{snapshot_id}-{uuid.uuid4()}.avro"
    if format_version == 3:
        lists = ManifestListWriterV3(table.io.new_output(list_path), snapshot_id,
                                     parent.snapshot_id, sequence_number, "deflate")
    else:
        lists = write_manifest_list(2, table.io.new_output(list_path), snapshot_id,
                                    parent.snapshot_id, sequence_number, "deflate")
    with lists:
        lists.add_manifests(manifests)
    return snapshot_id, sequence_number, list_path


def commit_deletes(catalog, identifier, delete_files):
    """Commits `delete_files` as one `delete` snapshot of `identifier`'s main branch (v2)."""
    table = catalog.load_table(identifier)
    parent = table.current_snapshot()
    snapshot_id, sequence_number, list_path = _write_delete_snapshot(table, delete_files, 2)
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


def write_v3_with_deletes(table, delete_files):
    """A format v3 metadata file for `table` (a v2 table pyiceberg wrote) plus a `delete`
    snapshot of `delete_files`, written beside its metadata; returns its location.

    pyiceberg cannot write v3 metadata, so the JSON is written here: the v2 document with
    `format-version` 3, `next-row-id` (row lineage starts after the rows written so far) and
    the new snapshot with its `first-row-id` and `added-rows`."""
    parent = table.current_snapshot()
    snapshot_id, sequence_number, list_path = _write_delete_snapshot(table, delete_files, 3)
    local = table.metadata_location.removeprefix("file://")
    with open(local) as source:
        document = json.load(source)
    rows = sum(data_files(table).values())
    now = int(time.time() * 1000)
    document.update({
        "format-version": 3,
        "next-row-id": rows,
        "last-sequence-number": sequence_number,
        "last-updated-ms": now,
        "current-snapshot-id": snapshot_id,
    })
    document["snapshots"].append({
        "snapshot-id": snapshot_id, "parent-snapshot-id": parent.snapshot_id,
        "sequence-number": sequence_number, "timestamp-ms": now, "manifest-list": list_path,
        "summary": {"operation": "delete"}, "schema-id": table.schema().schema_id,
        "first-row-id": rows, "added-rows": 0,
    })
    document["refs"] = {"main": {"snapshot-id": snapshot_id, "type": "branch"}}
    document.setdefault("snapshot-log", []).append(
        {"snapshot-id": snapshot_id, "timestamp-ms": now})
    path = f"{table.location()}/metadata/v{len(document['snapshots']) + 100}.metadata.json"
    with open(path.removeprefix("file://"), "w") as out:
        json.dump(document, out)
    return path


def data_files(table):
    """The current snapshot's data files, by path, with their row counts."""
    return {task.file.file_path: task.file.record_count for task in table.scan().plan_files()}
