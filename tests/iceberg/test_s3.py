"""Iceberg tables on object storage: pyiceberg writes them to moto's S3-compatible server (the
one the Rust S3 tests use, named by OSPREY_TEST_MOTO_SERVER), and Osprey reads them,
registered by their directory, through an attached SQL catalog, and through moto's Glue Data
Catalog, with the bucket's credentials in its own `[[storage]]` configuration (never in
plans)."""

import json
import os
import socket
import subprocess
import time
import types
import urllib.parse

import pyarrow as pa
import pyarrow.fs
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from conftest import client_conftest, column, error_of, run

KEY, SECRET = "osprey-test-key", "osprey-test-secret"
# The bucket `vended`: Osprey's own configuration has one key for it, the REST catalog vends
# another.
CONFIG_KEY, VENDED_KEY, VENDED_SECRET = "config-key", "vended-key", "vended-secret-value"


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    binary = os.environ.get("OSPREY_TEST_MOTO_SERVER")
    if not binary:
        raise RuntimeError("OSPREY_TEST_MOTO_SERVER must name moto's `moto_server`; "
                           "scripts/test.sh sets it")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # moto records every request (headers included) to a file: the vended-credentials test
    # reads which keys signed which request.
    recording = tmp_path_factory.mktemp("moto") / "recording.ndjson"
    env = {**os.environ, "MOTO_ENABLE_RECORDING": "True", "MOTO_RECORDER_FILEPATH": str(recording)}
    server = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.time() < deadline, "moto_server did not start"
            time.sleep(0.1)
    yield types.SimpleNamespace(url=f"http://127.0.0.1:{port}", recording=recording)
    server.kill()
    server.wait()


@pytest.fixture(scope="module")
def s3_osprey(moto, tmp_path_factory):
    """An `osprey local` whose `[[storage]]` reaches the bucket `lake` on moto."""
    s3 = pyarrow.fs.S3FileSystem(endpoint_override=moto.url, access_key=KEY, secret_key=SECRET,
                                 region="us-east-1", scheme="http", allow_bucket_creation=True)
    s3.create_dir("lake")
    s3.create_dir("vended")
    root = tmp_path_factory.mktemp("s3-osprey")
    config = root / "osprey.toml"
    config.write_text(f"""
[[storage]]
prefix = "s3://lake"
options = {{ aws_endpoint = "{moto.url}", aws_allow_http = "true", aws_virtual_hosted_style_request = "false", aws_region = "us-east-1", aws_access_key_id = "{KEY}", aws_secret_access_key = "{SECRET}" }}

[[storage]]
prefix = "s3://vended"
options = {{ aws_endpoint = "{moto.url}", aws_allow_http = "true", aws_virtual_hosted_style_request = "false", aws_region = "us-east-1", aws_access_key_id = "{CONFIG_KEY}", aws_secret_access_key = "config-secret" }}
""")
    args = ("--executors", "2", "--tpch-scale", "0", "--data-dir", str(root / "data"),
            "--bytes-per-task", "1KiB", "--config", str(config))
    with client_conftest.osprey_local(*args) as uri:
        yield uri


S3_PROPERTIES = {"s3.access-key-id": KEY, "s3.secret-access-key": SECRET, "s3.region": "us-east-1"}


def test_an_iceberg_table_on_s3(moto, s3_osprey, tmp_path):
    uri = s3_osprey
    writer = SqlCatalog("s3lake", uri=f"sqlite:///{tmp_path}/catalog.db",
                        warehouse="s3://lake/warehouse",
                        **{"s3.endpoint": moto.url, **S3_PROPERTIES})
    writer.create_namespace("db")
    schema = Schema(NestedField(1, "id", LongType(), required=True), NestedField(2, "name", StringType()))
    table = writer.create_table("db.events", schema)
    for start in (0, 100):
        table.append(pa.Table.from_pylist([{"id": i, "name": f"e{i}"} for i in range(start, start + 100)],
                                          schema=schema.as_arrow()))
    table.delete("id < 10")
    assert table.location().startswith("s3://lake/")

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


def test_a_glue_catalog(moto, s3_osprey):
    """pyiceberg's GlueCatalog writes through moto's Glue Data Catalog; Osprey attaches the same
    catalog with `type = 'glue'`, signing its calls with the catalog's own keys."""
    import boto3
    from pyiceberg.catalog.glue import GlueCatalog

    glue_properties = {"glue.endpoint": moto.url, "glue.region": "us-east-1",
                       "glue.access-key-id": KEY, "glue.secret-access-key": SECRET}
    writer = GlueCatalog("glue", warehouse="s3://lake/glue", **glue_properties,
                         **{"s3.endpoint": moto.url, **S3_PROPERTIES})
    writer.create_namespace("sales")
    schema = Schema(NestedField(1, "id", LongType(), required=True), NestedField(2, "region", StringType()))
    orders = writer.create_table("sales.orders", schema)
    orders.append(pa.Table.from_pylist([{"id": i, "region": "eu" if i % 2 else "us"} for i in range(50)],
                                       schema=schema.as_arrow()))
    # A Hive table in the same database: not Iceberg, so not listed, and refused by name.
    boto3.client("glue", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id=KEY,
                 aws_secret_access_key=SECRET).create_table(
        DatabaseName="sales", TableInput={"Name": "legacy", "Parameters": {"classification": "csv"}})

    uri = s3_osprey
    with_clause = ", ".join(f"'{k}' = '{v}'" for k, v in glue_properties.items())
    run(uri, f"CREATE CATALOG aws USING iceberg WITH (type = 'glue', {with_clause})")
    try:
        assert "sales" in column(run(uri, "SHOW SCHEMAS FROM aws"), "Schema")
        assert column(run(uri, "SHOW TABLES FROM aws.sales"), "Table") == ["orders"]
        got = run(uri, "SELECT region, count(*) AS n FROM aws.sales.orders GROUP BY region ORDER BY region")
        assert got.to_pylist() == [{"region": "eu", "n": 25}, {"region": "us", "n": 25}]

        # Another engine's commit shows at the next statement.
        orders.append(pa.Table.from_pylist([{"id": 100, "region": "apac"}], schema=schema.as_arrow()))
        got = run(uri, "SELECT count(*) AS n FROM aws.sales.orders").to_pylist()
        assert got == [{"n": 51}]
        history = run(uri, 'SELECT snapshot_id FROM aws.sales."orders$snapshots"')
        assert history.num_rows == 2

        assert "not an Iceberg table" in error_of(uri, "SELECT * FROM aws.sales.legacy")
        shown = str(run(uri, "SHOW CREATE CATALOG aws").to_pylist())
        assert SECRET not in shown and KEY in shown
        plan = str(run(uri, "EXPLAIN SELECT * FROM aws.sales.orders").to_pylist())
        assert SECRET not in plan and KEY not in plan
    finally:
        run(uri, "DROP CATALOG aws")

    # A Glue endpoint that does not answer: refused at CREATE, as retryable.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    message = error_of(uri, f"CREATE CATALOG dead USING iceberg WITH (type = 'glue', "
                            f"'glue.region' = 'us-east-1', 'glue.endpoint' = 'http://127.0.0.1:{closed}', "
                            f"'glue.access-key-id' = '{KEY}', 'glue.secret-access-key' = '{SECRET}')")
    assert "cannot be reached" in message and SECRET not in message


def signers(recording, method, bucket_path, suffixes=(".parquet",)):
    """The access key ids that signed each `method` request for a file under `bucket_path`
    ending in one of `suffixes`, as moto recorded them (then the recording is emptied)."""
    keys = []
    for line in recording.read_text().splitlines():
        entry = json.loads(line)
        path = urllib.parse.urlsplit(entry["url"]).path
        if entry["method"] == method and path.startswith(bucket_path) and path.endswith(suffixes):
            auth = entry["headers"].get("Authorization", "")
            keys.append(auth.split("Credential=")[1].split("/")[0] if "Credential=" in auth else None)
    recording.write_text("")
    return keys


def signers_of_data_reads(recording, bucket_path):
    """The access key ids that signed each GET of a Parquet file under `bucket_path`."""
    return signers(recording, "GET", bucket_path)


def test_rest_catalog_vended_credentials(moto, s3_osprey, tmp_path):
    """A REST catalog that vends S3 credentials with a table: Osprey's coordinator and
    executors read its files with them, not with Osprey's own keys for the bucket, and the
    credentials never appear in a plan."""
    import rest_adapter

    s3_properties = {"s3.endpoint": moto.url, **S3_PROPERTIES}
    db = f"sqlite:///{tmp_path}/vending.db"
    writer = SqlCatalog("vending", uri=db, warehouse="s3://vended/warehouse", **s3_properties)
    writer.create_namespace("db")
    schema = Schema(NestedField(1, "id", LongType(), required=True), NestedField(2, "name", StringType()))
    table = writer.create_table("db.items", schema)
    for start in range(0, 400, 100):  # several files, so the scan is split across executors
        table.append(pa.Table.from_pylist([{"id": i, "name": f"i{i}"} for i in range(start, start + 100)],
                                          schema=schema.as_arrow()))
    expires = int(time.time() * 1000) + 3_600_000
    vending = {"s3.access-key-id": VENDED_KEY, "s3.secret-access-key": VENDED_SECRET,
               "s3.session-token": "vended-session-token",
               "s3.session-token-expires-at-ms": str(expires)}
    servers = {
        "vends": rest_adapter.serve(db, "vending", "s3://vended/warehouse",
                                    catalog_properties=s3_properties, vended=vending),
        "plain": rest_adapter.serve(db, "vending", "s3://vended/warehouse",
                                    catalog_properties=s3_properties),
    }
    uri = s3_osprey
    query = "SELECT sum(length(name)) AS chars, count(*) AS n FROM {}.db.items WHERE id % 3 = 0"
    try:
        for name, (_, base) in servers.items():
            run(uri, f"CREATE CATALOG {name} USING iceberg WITH (type = 'rest', uri = '{base}')")
        signers_of_data_reads(moto.recording, "/vended/")

        # Without vending, the bucket's own key from [[storage]] signs the reads.
        plain = run(uri, query.format("plain")).to_pylist()
        assert set(signers_of_data_reads(moto.recording, "/vended/")) == {CONFIG_KEY}

        # With vending, the vended key signs every read of a data file, and the answer is the
        # same.
        assert run(uri, query.format("vends")).to_pylist() == plain == [
            {"chars": sum(len(f"i{i}") for i in range(0, 400, 3)), "n": len(range(0, 400, 3))}]
        read_by = signers_of_data_reads(moto.recording, "/vended/")
        assert read_by and set(read_by) == {VENDED_KEY}, read_by

        plan = str(run(uri, "EXPLAIN " + query.format("vends")).to_pylist())
        assert "Stage 1" in plan, plan  # the data files were read by executors
        assert VENDED_SECRET not in plan and "vended-session-token" not in plan and VENDED_KEY not in plan
        history = str(run(uri, "SELECT * FROM system.queries").to_pylist())
        assert VENDED_SECRET not in history

        # Writes go through the vended credentials too: the executors' data files, and the
        # coordinator's manifests (the REST server writes the metadata file itself).
        run(uri, "INSERT INTO vends.db.items VALUES (1000, 'new'), (1001, 'newer')")
        put = signers(moto.recording, "PUT", "/vended/warehouse/db/items/", (".parquet", ".avro"))
        assert put and set(put) == {VENDED_KEY}, put
        written = writer.load_table("db.items").scan(row_filter="id >= 1000").to_arrow()
        assert sorted(written.column("name").to_pylist()) == ["new", "newer"]
    finally:
        for name, (server, _) in servers.items():
            run(uri, f"DROP CATALOG IF EXISTS {name}")
            server.shutdown()
            server.server_close()


def test_writes_through_a_glue_catalog(moto, s3_osprey):
    """Osprey creates, writes and alters Iceberg tables of a Glue catalog (its commits update
    the Glue table with its VersionId); pyiceberg's GlueCatalog reads them, and its own append
    lands on Osprey's commits."""
    from pyiceberg.catalog.glue import GlueCatalog

    glue_properties = {"glue.endpoint": moto.url, "glue.region": "us-east-1",
                       "glue.access-key-id": KEY, "glue.secret-access-key": SECRET}
    reader = GlueCatalog("glue", warehouse="s3://lake/glue-w", **glue_properties,
                         **{"s3.endpoint": moto.url, **S3_PROPERTIES})
    uri = s3_osprey
    with_clause = ", ".join(f"'{k}' = '{v}'" for k, v in glue_properties.items())
    run(uri, f"CREATE CATALOG gw USING iceberg WITH (type = 'glue', {with_clause}, "
             f"warehouse = 's3://lake/glue-w')")
    try:
        run(uri, "CREATE SCHEMA gw.crm")
        run(uri, "CREATE TABLE gw.crm.people WITH (partitioning = ARRAY['team']) AS "
                 "SELECT CAST(id AS BIGINT) AS id, 't' || CAST(id % 2 AS VARCHAR) AS team "
                 "FROM (SELECT unnest(range(0, 10)) AS id)")
        run(uri, "DELETE FROM gw.crm.people WHERE id < 3")
        run(uri, "ALTER TABLE gw.crm.people ADD COLUMN note VARCHAR")
        run(uri, "INSERT INTO gw.crm.people VALUES (42, 't0', 'late')")
        table = reader.load_table("crm.people")
        assert table.location().startswith("s3://lake/glue-w/crm.db/people")
        assert sorted(column(table.scan().to_arrow(), "id")) == list(range(3, 10)) + [42]
        assert [f.name for f in table.schema().fields] == ["id", "team", "note"]

        table.append(pa.table({"id": pa.array([7000], pa.int64()), "team": ["t1"],
                               "note": [None]}, schema=table.schema().as_arrow()))
        got = run(uri, "SELECT count(*) AS n FROM gw.crm.people").to_pylist()
        assert got == [{"n": 9}]
        run(uri, "DROP TABLE gw.crm.people")
        assert "people" not in [t[1] for t in reader.list_tables("crm")]
        run(uri, "DROP SCHEMA gw.crm")
    finally:
        run(uri, "DROP CATALOG gw")
