"""An Iceberg table on object storage: pyiceberg writes it to moto's S3-compatible server (the
one the Rust S3 tests use, named by OSPREY_TEST_MOTO_SERVER), and Osprey reads it, registered
by its directory and through an attached SQL catalog, with the bucket's credentials in its
own `[[storage]]` configuration (never in plans)."""

import os
import socket
import subprocess
import time

import pyarrow as pa
import pyarrow.fs
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from conftest import client_conftest, run

KEY, SECRET = "osprey-test-key", "osprey-test-secret"


@pytest.fixture
def moto():
    binary = os.environ.get("OSPREY_TEST_MOTO_SERVER")
    if not binary:
        raise RuntimeError("OSPREY_TEST_MOTO_SERVER must name moto's `moto_server`; "
                           "scripts/test.sh sets it")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.time() < deadline, "moto_server did not start"
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.kill()
    server.wait()


def test_an_iceberg_table_on_s3(moto, tmp_path):
    s3 = pyarrow.fs.S3FileSystem(endpoint_override=moto, access_key=KEY, secret_key=SECRET,
                                 region="us-east-1", scheme="http", allow_bucket_creation=True)
    s3.create_dir("lake")
    writer = SqlCatalog("s3lake", uri=f"sqlite:///{tmp_path}/catalog.db",
                        warehouse="s3://lake/warehouse",
                        **{"s3.endpoint": moto, "s3.access-key-id": KEY,
                           "s3.secret-access-key": SECRET, "s3.region": "us-east-1"})
    writer.create_namespace("db")
    schema = Schema(NestedField(1, "id", LongType(), required=True), NestedField(2, "name", StringType()))
    table = writer.create_table("db.events", schema)
    for start in (0, 100):
        table.append(pa.Table.from_pylist([{"id": i, "name": f"e{i}"} for i in range(start, start + 100)],
                                          schema=schema.as_arrow()))
    table.delete("id < 10")
    assert table.location().startswith("s3://lake/")

    config = tmp_path / "osprey.toml"
    config.write_text(f"""
[[storage]]
prefix = "s3://lake"
options = {{ aws_endpoint = "{moto}", aws_allow_http = "true", aws_virtual_hosted_style_request = "false", aws_region = "us-east-1", aws_access_key_id = "{KEY}", aws_secret_access_key = "{SECRET}" }}
""")
    args = ("--executors", "2", "--tpch-scale", "0", "--data-dir", str(tmp_path / "data"),
            "--bytes-per-task", "1KiB", "--config", str(config))
    with client_conftest.osprey_local(*args) as uri:
        run(uri, "CREATE SCHEMA lake")
        run(uri, f"CREATE EXTERNAL TABLE lake.events STORED AS ICEBERG LOCATION '{table.location()}'")
        got = run(uri, "SELECT count(*) AS n, min(id) AS lo, max(id) AS hi FROM lake.events").to_pylist()
        assert got == [{"n": 190, "lo": 10, "hi": 199}]

        run(uri, f"CREATE CATALOG s3cat USING iceberg WITH (type = 'sql', "
                 f"uri = 'sqlite://{tmp_path}/catalog.db', catalog_name = 's3lake')")
        got = run(uri, "SELECT name FROM s3cat.db.events WHERE id = 150").to_pylist()
        assert got == [{"name": "e150"}]
        plan = str(run(uri, "EXPLAIN SELECT * FROM s3cat.db.events").to_pylist())
        assert SECRET not in plan and KEY not in plan
