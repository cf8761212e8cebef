"""Shared pieces for the Iceberg interoperability tests: an `osprey local` cluster (from the
client tests' conftest) and a pyiceberg SqlCatalog on SQLite with a local warehouse."""

import contextlib
import importlib.util
import pathlib

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_manager
import pytest

_spec = importlib.util.spec_from_file_location(
    "osprey_client_conftest", pathlib.Path(__file__).resolve().parents[1] / "python" / "conftest.py")
client_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(client_conftest)
PASSWORD = client_conftest.PASSWORD


@pytest.fixture(scope="session")
def osprey_servers(tmp_path_factory):
    """An `osprey local` with two executors and tiny scan tasks, so Iceberg scans are split
    across executors (and so travel through the plan codec): its Flight SQL URI and its HTTP
    base URL."""
    data_dir = tmp_path_factory.mktemp("osprey-data")
    with client_conftest.osprey_local_servers("--executors", "2", "--tpch-scale", "0",
                                              "--data-dir", str(data_dir),
                                              "--bytes-per-task", "1KiB") as servers:
        yield servers


@pytest.fixture(scope="session")
def osprey(osprey_servers):
    """The shared cluster's Flight SQL URI."""
    return osprey_servers[0]


@pytest.fixture(scope="session")
def osprey_http(osprey_servers):
    """The shared cluster's HTTP base URL (its Iceberg REST catalog is at `/iceberg`)."""
    return osprey_servers[1]


def connect(uri):
    return flightsql.connect(uri, db_kwargs={"username": "admin", "password": PASSWORD},
                             autocommit=True)


def run(uri, sql):
    """The rows of `sql` as a pyarrow table."""
    with connect(uri) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table()


def column(table, name):
    """The values of `table`'s column `name`, as a list."""
    return table.column(name).to_pylist()


def error_of(uri, sql):
    """The message of the error `sql` fails with (the test fails when it succeeds)."""
    with pytest.raises(adbc_driver_manager.Error) as error:
        run(uri, sql)
    return str(error.value)


def table_dir(table):
    """A pyiceberg table's directory, as a local path."""
    return table.location().removeprefix("file://")


def register(uri, name, location):
    """Registers the Iceberg table at `location` as lake.NAME."""
    run(uri, "CREATE SCHEMA IF NOT EXISTS lake")
    run(uri, f"CREATE EXTERNAL TABLE lake.{name} STORED AS ICEBERG LOCATION '{location}'")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """A pyiceberg SqlCatalog named `lake` on SQLite, with a `file://` warehouse."""
    from pyiceberg.catalog.sql import SqlCatalog

    root = tmp_path_factory.mktemp("iceberg")
    (root / "warehouse").mkdir()
    catalog = SqlCatalog("lake", uri=f"sqlite:///{root}/pyiceberg.db",
                         warehouse=f"file://{root}/warehouse")
    catalog.create_namespace("db")
    return catalog


@contextlib.contextmanager
def attached_sql_catalog(uri, root, catalog_name, alias):
    """A pyiceberg SqlCatalog `catalog_name` on SQLite under `root` (warehouse `root/warehouse`,
    a namespace `db`), attached to the Osprey at `uri` as `alias` while the block runs."""
    from pyiceberg.catalog.sql import SqlCatalog

    (root / "warehouse").mkdir()
    catalog = SqlCatalog(catalog_name, uri=f"sqlite:///{root}/catalog.db",
                         warehouse=f"file://{root}/warehouse")
    catalog.create_namespace("db")
    run(uri, f"CREATE CATALOG {alias} USING iceberg WITH (type = 'sql', "
             f"uri = 'sqlite://{root}/catalog.db', catalog_name = '{catalog_name}', "
             f"warehouse = 'file://{root}/warehouse')")
    try:
        yield catalog
    finally:
        run(uri, f"DROP CATALOG {alias}")
