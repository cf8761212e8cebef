"""Writes a benchmark dataset's tables as Iceberg tables with pyiceberg, over the same Parquet
files: `python iceberg_tables.py DATASET_DIR OUT_DIR`.

Each table directory's Parquet files are hard-linked under `OUT_DIR/tables/<table>/data/` (the
same bytes on disk; Osprey reads only files under a table's location) and registered with
pyiceberg's `add_files`, which writes the manifests with each file's column metrics and a name
mapping (the files carry no field ids). The catalog is a SqlCatalog on SQLite in OUT_DIR.
Run by osprey-benches for the `osprey-N-iceberg` engines.
"""

import os
import pathlib
import sys

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog


def plain(schema: pa.Schema) -> pa.Schema:
    """The schema with view types as their plain forms, which Iceberg's types map to."""
    def field(f):
        if f.type == pa.string_view():
            return f.with_type(pa.string())
        if f.type == pa.binary_view():
            return f.with_type(pa.binary())
        return f
    return pa.schema([field(f) for f in schema]).remove_metadata()


def main(source: pathlib.Path, out: pathlib.Path) -> None:
    (out / "tables").mkdir(parents=True)
    catalog = SqlCatalog("bench", uri=f"sqlite:///{out}/catalog.db",
                         warehouse=f"file://{out}/warehouse")
    catalog.create_namespace("bench")
    for table_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        files = sorted(table_dir.glob("*.parquet"))
        location = out / "tables" / table_dir.name
        (location / "data").mkdir(parents=True)
        linked = []
        for file in files:
            target = location / "data" / file.name
            os.link(file, target)
            linked.append(str(target))
        table = catalog.create_table(f"bench.{table_dir.name}",
                                     schema=plain(pq.read_schema(files[0])),
                                     location=f"file://{location}")
        table.add_files(linked)
        print(f"  {table_dir.name}: {len(linked)} files", flush=True)


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]).resolve(), pathlib.Path(sys.argv[2]).resolve())
