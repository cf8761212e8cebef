"""Attached Iceberg catalogs: `CREATE CATALOG ... USING iceberg` over catalogs that pyiceberg
writes, read as `catalog.namespace.table` through Flight SQL (ADBC).

- `type = 'sql'`: pyiceberg's SqlCatalog tables on SQLite and on PostgreSQL (the server that
  scripts/with-postgres.sh starts, named by OSPREY_TEST_POSTGRES_URL);
- `type = 'rest'`: the Iceberg REST protocol, served over a SqlCatalog by rest_adapter.py with
  OAuth2 client credentials and a prefix;
- `type = 'hadoop'`: a warehouse directory of `<namespace>/<table>/metadata/`.
"""

import os
import pathlib
import subprocess
import sys
import urllib.parse

import adbc_driver_manager
import pyarrow as pa
import pytest
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import StaticTable
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from conftest import client_conftest, column, connect, error_of, run

SCHEMA = Schema(NestedField(1, "id", LongType(), required=True), NestedField(2, "name", StringType()))


def batch(ids):
    return pa.Table.from_pylist([{"id": i, "name": f"n{i}"} for i in ids],
                                schema=SCHEMA.as_arrow())


def postgres_urls():
    """The test PostgreSQL server, as Osprey (sqlx) and pyiceberg (SQLAlchemy) spell it. A
    password is added (the server trusts loopback) so that its masking shows."""
    url = os.environ.get("OSPREY_TEST_POSTGRES_URL")
    if not url:
        raise RuntimeError("OSPREY_TEST_POSTGRES_URL is not set: run the Iceberg tests "
                           "through scripts/with-postgres.sh (scripts/test.sh does)")
    parts = urllib.parse.urlsplit(url)
    with_password = parts._replace(netloc=f"{parts.username}:pg-secret@{parts.hostname}:{parts.port}")
    osprey = urllib.parse.urlunsplit(with_password)
    return osprey, osprey.replace("postgres://", "postgresql+psycopg2://", 1)


@pytest.fixture(params=["sqlite", "postgres"])
def sql_catalog(request, tmp_path):
    """A pyiceberg SqlCatalog (its own catalog_name) with namespace `sales` holding `orders`,
    and an empty namespace `empty`; yields (catalog, the uri Osprey gets)."""
    backend = request.param
    name = f"pyi_{backend}_{os.getpid()}_{abs(hash(tmp_path)) % 10**6}"
    if backend == "sqlite":
        osprey_uri = f"sqlite://{tmp_path}/catalog.db"
        pyiceberg_uri = f"sqlite:///{tmp_path}/catalog.db"
    else:
        osprey_uri, pyiceberg_uri = postgres_urls()
    (tmp_path / "warehouse").mkdir()
    catalog = SqlCatalog(name, uri=pyiceberg_uri, warehouse=f"file://{tmp_path}/warehouse")
    catalog.create_namespace("sales")
    catalog.create_namespace("empty")
    catalog.create_table("sales.orders", SCHEMA).append(batch([1, 2, 3]))
    yield backend, catalog, osprey_uri


def test_sql_catalog_reads_lists_and_follows_commits(osprey, sql_catalog):
    backend, catalog, uri = sql_catalog
    name = f"jdbc_{backend}"
    run(osprey, f"CREATE OR REPLACE CATALOG {name} USING iceberg "
                f"WITH (type = 'sql', uri = '{uri}', catalog_name = '{catalog.name}')")
    try:
        assert name in column(run(osprey, "SHOW CATALOGS"), "Catalog")
        assert {"sales", "empty"} <= set(column(run(osprey, f"SHOW SCHEMAS FROM {name}"), "Schema"))
        assert column(run(osprey, f"SHOW TABLES FROM {name}.sales"), "Table") == ["orders"]

        orders = catalog.load_table("sales.orders")
        first = orders.current_snapshot().snapshot_id
        got = run(osprey, f"SELECT id, name FROM {name}.sales.orders ORDER BY id")
        assert got.to_pylist() == orders.scan().to_arrow().sort_by("id").to_pylist()

        # Another engine commits: the next query reads the new snapshot, and a new table is
        # listed everywhere: SHOW, information_schema, and the Flight SQL metadata calls.
        orders.append(batch([4, 5]))
        catalog.create_table("sales.returns", SCHEMA).append(batch([9]))
        assert run(osprey, f"SELECT count(*) AS n FROM {name}.sales.orders").column("n")[0].as_py() == 5
        assert column(run(osprey, f"SHOW TABLES FROM {name}.sales"), "Table") == ["orders", "returns"]
        listed = run(osprey, f"SELECT table_name FROM {name}.information_schema.tables "
                             "WHERE table_schema = 'sales' ORDER BY 1")
        assert column(listed, "table_name") == ["orders", "returns"]
        with connect(osprey) as conn:
            objects = conn.adbc_get_objects(catalog_filter=name).read_all().to_pylist()
        tables = {(schema["db_schema_name"], table["table_name"])
                  for entry in objects for schema in entry["catalog_db_schemas"]
                  for table in schema["db_schema_tables"] or []}
        assert {("sales", "orders"), ("sales", "returns")} <= tables

        # Time travel and metadata tables work on attached tables as on registered ones.
        old = run(osprey, f"SELECT count(*) AS n FROM {name}.sales.orders FOR VERSION AS OF {first}")
        assert old.column("n")[0].as_py() == 3
        snapshots = run(osprey, f'SELECT snapshot_id FROM {name}.sales."orders$snapshots"')
        assert set(column(snapshots, "snapshot_id")) == {s.snapshot_id for s in orders.refresh().snapshots()}

        # USE catalog.namespace: unqualified names resolve there.
        with connect(osprey) as conn, conn.cursor() as cur:
            cur.execute(f"USE {name}.sales")
            cur.execute("SELECT count(*) AS n FROM returns")
            assert cur.fetch_arrow_table().column("n")[0].as_py() == 1

        shown = run(osprey, f"SHOW CREATE CATALOG {name}").column("Create Catalog")[0].as_py()
        assert "type = 'sql'" in shown and catalog.name in shown
        assert "pg-secret" not in shown
        assert "pg-secret" not in str(run(osprey, "SELECT * FROM system.queries").to_pylist())

        described = run(osprey, f"SHOW CREATE TABLE {name}.sales.orders").to_pylist()[0]["definition"]
        assert f"attached Iceberg catalog {name}" in described, described
        missing = error_of(osprey, f"SELECT * FROM {name}.sales.nothing")
        assert "nothing" in missing and "not" in missing
        # An INSERT commits through the catalog, and pyiceberg sees it (more in test_writes.py).
        run(osprey, f"INSERT INTO {name}.sales.orders VALUES (7, 'x')")
        assert run(osprey, f"SELECT count(*) AS n FROM {name}.sales.orders").column("n")[0].as_py() == 6
        assert len(orders.refresh().scan().to_arrow()) == 6
    finally:
        run(osprey, f"DROP CATALOG {name}")
    assert name not in column(run(osprey, "SHOW CATALOGS"), "Catalog")
    assert name in error_of(osprey, f"SELECT * FROM {name}.sales.orders")


def test_rest_catalog_with_oauth2_and_an_outage(osprey, tmp_path):
    (tmp_path / "warehouse").mkdir()
    db = f"sqlite:///{tmp_path}/rest.db"
    warehouse = f"file://{tmp_path}/warehouse"
    # A process of its own, so that stopping it closes every connection (an outage).
    server = subprocess.Popen(
        [sys.executable, str(pathlib.Path(__file__).with_name("rest_adapter.py")), "--uri", db,
         "--catalog-name", "served", "--warehouse", warehouse, "--prefix", "main",
         "--client-id", "osprey", "--client-secret", "s3cr3t"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    base = server.stdout.readline().split()[-1]
    try:
        # pyiceberg writes through the REST protocol itself.
        writer = RestCatalog("w", uri=base, credential="osprey:s3cr3t", warehouse=warehouse)
        writer.create_namespace("web")
        writer.create_table("web.visits", SCHEMA).append(batch(range(10)))

        denied = error_of(osprey, "CREATE CATALOG rest_bad USING iceberg "
                                  f"WITH (type = 'rest', uri = '{base}', credential = 'osprey:wrong')")
        assert "refused" in denied and "wrong" not in denied
        assert "rest_bad" not in column(run(osprey, "SHOW CATALOGS"), "Catalog")

        run(osprey, "CREATE CATALOG rest_lake USING iceberg "
                    f"WITH (type = 'rest', uri = '{base}', credential = 'osprey:s3cr3t', "
                    f"warehouse = '{warehouse}')")
        assert column(run(osprey, "SHOW TABLES FROM rest_lake.web"), "Table") == ["visits"]
        got = run(osprey, "SELECT sum(id) AS s, count(*) AS n FROM rest_lake.web.visits")
        assert (got.column("s")[0].as_py(), got.column("n")[0].as_py()) == (45, 10)
        shown = run(osprey, "SHOW CREATE CATALOG rest_lake").column("Create Catalog")[0].as_py()
        assert "credential = '****'" in shown and "s3cr3t" not in shown
    finally:
        server.terminate()
        server.wait(10)
    # The catalog is down: a clear, retryable error, and the service stays up.
    down = error_of(osprey, "SELECT count(*) FROM rest_lake.web.visits")
    assert "rest_lake is unavailable" in down
    assert run(osprey, "SELECT 1 AS one").column("one")[0].as_py() == 1
    assert "rest_lake" in column(run(osprey, "SHOW CATALOGS"), "Catalog")
    run(osprey, "DROP CATALOG rest_lake")


def test_hadoop_catalog(osprey, tmp_path):
    warehouse = tmp_path / "hadoop"
    (warehouse / "events").mkdir(parents=True)
    writer = SqlCatalog("h", uri=f"sqlite:///{tmp_path}/h.db", warehouse=f"file://{tmp_path}/other")
    writer.create_namespace("events")
    clicks = writer.create_table("events.clicks", SCHEMA, location=f"file://{warehouse}/events/clicks")
    clicks.append(batch([1, 2]))
    clicks.append(batch([3]))
    run(osprey, f"CREATE CATALOG files USING iceberg WITH (type = 'hadoop', warehouse = '{warehouse}')")
    try:
        assert column(run(osprey, "SHOW SCHEMAS FROM files"), "Schema") == ["events", "information_schema"]
        assert column(run(osprey, "SHOW TABLES FROM files.events"), "Table") == ["clicks"]
        got = run(osprey, "SELECT id FROM files.events.clicks ORDER BY id")
        assert column(got, "id") == [1, 2, 3]

        # Osprey writes there too: the next version file, then the hint.
        run(osprey, "INSERT INTO files.events.clicks VALUES (4, 'n4')")
        metadata = warehouse / "events" / "clicks" / "metadata"
        assert (metadata / "version-hint.text").read_text() == "3"
        assert (metadata / "v3.metadata.json").exists()
        reread = StaticTable.from_metadata(f"file://{metadata}/v3.metadata.json")
        assert sorted(column(reread.scan().to_arrow(), "id")) == [1, 2, 3, 4]
        run(osprey, "DELETE FROM files.events.clicks WHERE id = 2")
        assert column(run(osprey, "SELECT id FROM files.events.clicks ORDER BY id"), "id") == [1, 3, 4]

        # A new table makes its namespace's directory: v1 and its hint.
        run(osprey, "CREATE TABLE files.logs.lines AS SELECT 'x' AS line")
        lines = warehouse / "logs" / "lines" / "metadata"
        # CTAS: the table is created (v1), then its rows committed (v2).
        assert (lines / "version-hint.text").read_text() == "2"
        assert column(StaticTable.from_metadata(f"file://{lines}/v1.metadata.json")
                      .scan().to_arrow(), "line") == []
        assert column(run(osprey, "SELECT line FROM files.logs.lines"), "line") == ["x"]
        assert "storage's own tools" in error_of(osprey, "DROP TABLE files.logs.lines")
        assert "appears with its first table" in error_of(osprey, "CREATE SCHEMA files.empty")
    finally:
        run(osprey, "DROP CATALOG files")


def test_catalog_statements_refuse_what_is_wrong(osprey, tmp_path):
    cases = {
        "CREATE CATALOG c USING delta WITH (type = 'rest', uri = 'http://x')": "iceberg",
        "CREATE CATALOG c USING iceberg WITH (type = 'glue', 'glue.region' = 'us-east-1', 'glue.access-key-id' = 'x')": "both glue.access-key-id",
        "CREATE CATALOG c USING iceberg WITH (type = 'rest')": "needs uri",
        "CREATE CATALOG c USING iceberg WITH (type = 'sql', uri = 'sqlite:///x', tokn = 'x')": "tokn",
        f"CREATE CATALOG c USING iceberg WITH (type = 'sql', uri = 'sqlite://{tmp_path}/none.db')": "catalog c",
        "CREATE CATALOG osprey USING iceberg WITH (type = 'hadoop', warehouse = '/tmp')": "built-in",
        "DROP CATALOG nothing_here": "does not exist",
        "SHOW CREATE CATALOG osprey": "built in",
    }
    for sql, message in cases.items():
        assert message in error_of(osprey, sql), sql
    assert "c" not in column(run(osprey, "SHOW CATALOGS"), "Catalog")
    run(osprey, "DROP CATALOG IF EXISTS nothing_here")

    # Attaching is for admins.
    run(osprey, "CREATE USER IF NOT EXISTS mallory PASSWORD 'mallory-password-1'")
    uri = osprey
    with adbc_driver_manager_connect(uri, "mallory", "mallory-password-1") as conn, conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as error:
            cur.execute(f"CREATE CATALOG m USING iceberg WITH (type = 'hadoop', warehouse = '{tmp_path}')")
        assert "admin" in str(error.value)


def adbc_driver_manager_connect(uri, user, password):
    import adbc_driver_flightsql.dbapi as flightsql
    return flightsql.connect(uri, db_kwargs={"username": user, "password": password}, autocommit=True)


def test_attached_catalogs_survive_a_restart(tmp_path):
    (tmp_path / "warehouse").mkdir()
    writer = SqlCatalog("kept", uri=f"sqlite:///{tmp_path}/kept.db", warehouse=f"file://{tmp_path}/warehouse")
    writer.create_namespace("db")
    writer.create_table("db.t", SCHEMA).append(batch([1, 2, 3, 4]))
    data_dir = tmp_path / "osprey-data"
    args = ("--executors", "1", "--tpch-scale", "0", "--data-dir", str(data_dir))
    with client_conftest.osprey_local(*args) as uri:
        run(uri, f"CREATE CATALOG kept USING iceberg WITH (type = 'sql', uri = 'sqlite://{tmp_path}/kept.db')")
    # The configuration file attaches one more, for the life of the process.
    config = tmp_path / "osprey.toml"
    config.write_text(f"""
[[catalogs]]
name = "configured"
type = "sql"
uri = "sqlite://{tmp_path}/kept.db"
catalog-name = "kept"
""")
    with client_conftest.osprey_local(*args, "--config", str(config)) as uri:
        assert run(uri, "SELECT count(*) AS n FROM kept.db.t").column("n")[0].as_py() == 4
        assert run(uri, "SELECT count(*) AS n FROM configured.db.t").column("n")[0].as_py() == 4
        assert "configuration file" in error_of(uri, "DROP CATALOG configured")
