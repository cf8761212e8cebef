"""Osprey as an Iceberg REST catalog: pyiceberg's RestCatalog against `/iceberg` on Osprey's
HTTP port, over Osprey's own tables. pyiceberg creates, appends and evolves, then Osprey reads;
Osprey writes, then pyiceberg reads; both see each other's commits at once."""

import pathlib
import urllib.error
import urllib.request

import pyarrow as pa
import pytest
from conftest import PASSWORD, column, error_of, run


def rest_catalog(http, credential=f"admin:{PASSWORD}"):
    from pyiceberg.catalog.rest import RestCatalog

    return RestCatalog("osprey", uri=f"{http}/iceberg", credential=credential,
                       **{"oauth2-server-uri": f"{http}/iceberg/v1/oauth/tokens"})


def test_pyiceberg_creates_appends_and_evolves_then_osprey_reads(osprey, osprey_http):
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import IdentityTransform
    from pyiceberg.types import LongType, NestedField, StringType

    catalog = rest_catalog(osprey_http)
    catalog.create_namespace("rest_in")
    assert ("rest_in",) in catalog.list_namespaces()
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "region", StringType(), required=False),
    )
    spec = PartitionSpec(PartitionField(source_id=2, field_id=1000,
                                        transform=IdentityTransform(), name="region"))
    table = catalog.create_table("rest_in.events", schema=schema, partition_spec=spec)
    # Osprey's catalog put it under its warehouse.
    assert "/warehouse/rest_in/events-" in table.location()
    table.append(pa.table({"id": pa.array([1, 2, 3], pa.int64()),
                           "region": ["eu", "us", "eu"]}))
    with table.update_schema() as update:
        update.add_column("amount", LongType())
    table = catalog.load_table("rest_in.events")
    table.append(pa.table({"id": pa.array([4], pa.int64()), "region": ["us"],
                           "amount": pa.array([40], pa.int64())}))

    # Osprey sees every commit at once: the rows, the new column, the partitioning.
    rows = run(osprey, "SELECT id, region, amount FROM rest_in.events ORDER BY id")
    assert column(rows, "id") == [1, 2, 3, 4]
    assert column(rows, "region") == ["eu", "us", "eu", "us"]
    assert column(rows, "amount") == [None, None, None, 40]
    assert column(run(osprey, "SHOW TABLES IN rest_in"), "Table") == ["events"]
    snapshots = run(osprey, 'SELECT operation FROM rest_in."events$snapshots"')
    assert column(snapshots, "operation") == ["append", "append"]
    shown = column(run(osprey, "SHOW CREATE TABLE rest_in.events"), "definition")[0]
    assert "partitioning = ARRAY['region']" in shown and "amount BIGINT" in shown

    # Osprey writes on top of pyiceberg's commits; pyiceberg reads them at its next load.
    run(osprey, "INSERT INTO rest_in.events VALUES (5, 'eu', 50)")
    run(osprey, "DELETE FROM rest_in.events WHERE id = 2")
    seen = catalog.load_table("rest_in.events").scan().to_arrow().sort_by("id")
    assert seen.column("id").to_pylist() == [1, 3, 4, 5]
    assert seen.column("amount").to_pylist() == [None, None, 40, 50]


def test_osprey_writes_then_pyiceberg_reads(osprey, osprey_http):
    run(osprey, "CREATE SCHEMA rest_out")
    run(osprey, "CREATE TABLE rest_out.orders WITH (partitioning = ARRAY['bucket(id, 4)']) "
                "AS SELECT id, CAST(id * 10 AS BIGINT) AS total, 'new' AS state "
                "FROM (VALUES (1), (2), (3), (4), (5), (6)) AS v(id)")
    run(osprey, "UPDATE rest_out.orders SET state = 'paid' WHERE id % 2 = 0")
    run(osprey, "DELETE FROM rest_out.orders WHERE id = 5")
    run(osprey, "ALTER TABLE rest_out.orders ADD COLUMN note VARCHAR")

    catalog = rest_catalog(osprey_http)
    assert ("rest_out", "orders") in catalog.list_tables("rest_out")
    table = catalog.load_table("rest_out.orders")
    assert [field.name for field in table.schema().fields] == ["id", "total", "state", "note"]
    seen = table.scan().to_arrow().sort_by("id")
    expected = run(osprey, "SELECT id, total, state, note FROM rest_out.orders ORDER BY id")
    assert seen.select(["id", "total", "state", "note"]).to_pylist() == expected.to_pylist()
    assert column(expected, "state") == ["new", "paid", "new", "paid", "paid"]

    # A legacy Parquet table and the built-in schemas' tables are not Iceberg tables.
    run(osprey, "CREATE TABLE rest_out.legacy WITH (table_type = 'PARQUET') AS SELECT 1 AS a")
    assert ("rest_out", "legacy") not in catalog.list_tables("rest_out")


def test_rename_drop_and_what_is_refused(osprey, osprey_http, tmp_path):
    from pyiceberg.exceptions import (BadRequestError, ForbiddenError, NamespaceNotEmptyError,
                                      NoSuchTableError)
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField

    catalog = rest_catalog(osprey_http)
    catalog.create_namespace("rest_life")
    schema = Schema(NestedField(1, "id", LongType(), required=False))
    table = catalog.create_table("rest_life.first", schema=schema)
    table.append(pa.table({"id": pa.array([7], pa.int64())}))
    directory = pathlib.Path(table.location().removeprefix("file://"))
    assert directory.is_dir()

    catalog.rename_table("rest_life.first", "rest_life.second")
    assert column(run(osprey, "SELECT id FROM rest_life.second"), "id") == [7]
    assert "does not exist" in error_of(osprey, "SELECT * FROM rest_life.first")
    with pytest.raises(NoSuchTableError):
        catalog.load_table("rest_life.first")
    with pytest.raises(NamespaceNotEmptyError):
        catalog.drop_namespace("rest_life")

    # A table's files stay in the warehouse: no location of the client's choosing, and no
    # registering files from elsewhere.
    with pytest.raises(Exception, match="location"):
        catalog.create_table("rest_life.elsewhere", schema=schema,
                             location=f"file://{tmp_path}/elsewhere")
    metadata_file = sorted((directory / "metadata").glob("*.metadata.json"))[-1]
    outside = tmp_path / "outside.metadata.json"
    outside.write_text(metadata_file.read_text())
    with pytest.raises(ForbiddenError, match="outside the warehouse"):
        catalog.register_table("rest_life.stolen", f"file://{outside}")
    with pytest.raises(ForbiddenError, match="belongs to the table"):
        catalog.register_table("rest_life.twin", f"file://{metadata_file}")

    # Dropping through the REST catalog deletes the table's files, as DROP TABLE does.
    catalog.drop_table("rest_life.second")
    assert not directory.exists()
    assert "does not exist" in error_of(osprey, "SELECT * FROM rest_life.second")
    catalog.drop_namespace("rest_life")
    assert ("rest_life",) not in catalog.list_namespaces()

    # Osprey's DROP TABLE purges a table pyiceberg created.
    catalog.create_namespace("rest_life")
    created = catalog.create_table("rest_life.third", schema=schema)
    run(osprey, "DROP TABLE rest_life.third")
    assert not pathlib.Path(created.location().removeprefix("file://")).exists()
    with pytest.raises(BadRequestError):
        catalog.create_namespace(("rest_life", "nested"))


def test_a_stale_commit_is_refused_by_its_requirements(osprey, osprey_http):
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.types import StringType

    run(osprey, "CREATE SCHEMA rest_race")
    run(osprey, "CREATE TABLE rest_race.t (id BIGINT)")
    catalog = rest_catalog(osprey_http)
    stale = catalog.load_table("rest_race.t")
    run(osprey, "INSERT INTO rest_race.t VALUES (1)")
    # The stale schema update asserts the schema it was built on, which still holds, so it
    # commits on top of Osprey's insert; the rows Osprey wrote stay.
    with stale.update_schema() as update:
        update.add_column("extra", StringType())
    run(osprey, "ALTER TABLE rest_race.t ADD COLUMN other INT")
    # Built on the schema before Osprey's ALTER: the protocol's requirement refuses it.
    with pytest.raises(CommitFailedException):
        with stale.update_schema() as update:
            update.add_column("late", StringType())
    rows = run(osprey, "SELECT * FROM rest_race.t")
    assert rows.column_names == ["id", "extra", "other"]
    assert column(rows, "id") == [1]


def test_credentials_are_osprey_users(osprey, osprey_http):
    from pyiceberg.exceptions import OAuthError

    # Any Osprey user logs in with their own password, and sees what it is granted: nothing
    # at first.
    run(osprey, "CREATE USER rest_ana PASSWORD 'rest-ana-password-1'")
    ana = rest_catalog(osprey_http, credential="rest_ana:rest-ana-password-1")
    assert ana.list_namespaces() == []
    run(osprey, "CREATE SCHEMA IF NOT EXISTS rest_gov")
    run(osprey, "CREATE TABLE rest_gov.shown (id BIGINT)")
    run(osprey, "CREATE TABLE rest_gov.hidden (id BIGINT)")
    run(osprey, "GRANT SELECT ON rest_gov.shown TO rest_ana")
    assert ana.list_namespaces() == [("rest_gov",)]
    assert ana.list_tables("rest_gov") == [("rest_gov", "shown")]
    assert ana.load_table("rest_gov.shown").scan().to_arrow().num_rows == 0
    # A table not granted is refused, whether it exists or not; so is a write without INSERT.
    from pyiceberg.exceptions import ForbiddenError
    for name in ("rest_gov.hidden", "rest_gov.nothing_here"):
        with pytest.raises(ForbiddenError, match="permission denied"):
            ana.load_table(name)
    shown = ana.load_table("rest_gov.shown")
    rows = pa.table({"id": pa.array([1], pa.int64())})
    with pytest.raises(ForbiddenError, match="INSERT"):
        shown.append(rows)
    run(osprey, "GRANT INSERT ON rest_gov.shown TO rest_ana")
    shown.append(rows)
    assert column(run(osprey, "SELECT id FROM rest_gov.shown"), "id") == [1]
    # Creating needs CREATE on the namespace; the creator owns what it made.
    with pytest.raises(ForbiddenError, match="CREATE"):
        ana.create_table("rest_gov.anas", schema=rows.schema)
    run(osprey, "GRANT CREATE ON SCHEMA rest_gov TO rest_ana")
    ana.create_table("rest_gov.anas", schema=rows.schema)
    # SHOW GRANTS ON a table lists the grants that cover it: the schema's too.
    grants = run(osprey, "SHOW GRANTS ON rest_gov.shown").to_pylist()
    assert sorted((g["object_type"], g["privilege"]) for g in grants) == [
        ("SCHEMA", "CREATE"), ("TABLE", "INSERT"), ("TABLE", "SELECT")]
    ana.drop_table("rest_gov.anas")
    run(osprey, "DROP USER rest_ana")
    assert run(osprey, "SHOW GRANTS ON rest_gov.shown").num_rows == 0
    # Dropping the user revokes the token the catalog holds: its call is refused, and the
    # client's new login with the same credentials fails.
    with pytest.raises(OAuthError, match="invalid username or password"):
        ana.list_namespaces()
    with pytest.raises(OAuthError):
        rest_catalog(osprey_http, credential="rest_ana:rest-ana-password-1")

    with pytest.raises(OAuthError):
        rest_catalog(osprey_http, credential="admin:wrong-password")
    request = urllib.request.Request(f"{osprey_http}/iceberg/v1/namespaces")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 401
    assert b"NotAuthorizedException" in refused.value.read()


def test_own_tables_are_maintained_and_time_travel(osprey, osprey_http):
    run(osprey, "CREATE SCHEMA rest_care")
    run(osprey, "CREATE TABLE rest_care.t (id BIGINT, v VARCHAR)")
    for start in (1, 3, 5):
        run(osprey, f"INSERT INTO rest_care.t VALUES ({start}, 'a'), ({start + 1}, 'b')")
    run(osprey, "DELETE FROM rest_care.t WHERE id = 2")
    first = column(run(osprey, 'SELECT snapshot_id FROM rest_care."t$snapshots" '
                               'ORDER BY committed_at LIMIT 1'), "snapshot_id")[0]
    figures = run(osprey, "ALTER TABLE rest_care.t EXECUTE optimize")
    assert column(figures, "rewritten_data_files_count") == [3]
    catalog = rest_catalog(osprey_http)
    table = catalog.load_table("rest_care.t")
    assert table.current_snapshot().summary.operation.value == "replace"
    assert sorted(table.scan().to_arrow().column("id").to_pylist()) == [1, 3, 4, 5, 6]
    old = run(osprey, f"SELECT id FROM rest_care.t FOR VERSION AS OF {first} ORDER BY id")
    assert column(old, "id") == [1, 2]


def test_appends_through_the_rest_catalog_and_osprey_all_survive(osprey, osprey_http):
    import threading

    from pyiceberg.exceptions import CommitFailedException

    from conftest import connect

    rounds = 25
    run(osprey, "CREATE SCHEMA rest_busy")
    run(osprey, "CREATE TABLE rest_busy.t (id BIGINT)")
    run(osprey, "ALTER TABLE rest_busy.t SET PROPERTIES \"commit.retry.num-retries\" = 50, "
                "\"commit.retry.min-wait-ms\" = 5, \"commit.retry.max-wait-ms\" = 100")
    errors, refused = [], []

    def pyiceberg_appends():
        catalog = rest_catalog(osprey_http)
        try:
            for n in range(rounds):
                rows = pa.table({"id": pa.array([1000 + n], pa.int64())})
                # A commit the server refuses (the branch moved) is the client's to retry.
                for _ in range(100):
                    try:
                        catalog.load_table("rest_busy.t").append(rows)
                        break
                    except CommitFailedException:
                        refused.append(n)
                else:
                    raise AssertionError(f"append {n} never committed")
        except Exception as err:  # reported by the main thread
            errors.append(err)

    def osprey_inserts():
        try:
            with connect(osprey) as conn, conn.cursor() as cur:
                for n in range(rounds):
                    cur.execute(f"INSERT INTO rest_busy.t VALUES ({n})")
                    cur.fetchall()
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=work) for work in (pyiceberg_appends, osprey_inserts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    print(f"pyiceberg's appends were refused {len(refused)} times and retried")
    expected = list(range(rounds)) + [1000 + n for n in range(rounds)]
    assert column(run(osprey, "SELECT id FROM rest_busy.t ORDER BY id"), "id") == expected
    seen = rest_catalog(osprey_http).load_table("rest_busy.t")
    assert sorted(seen.scan().to_arrow().column("id").to_pylist()) == expected
    assert len(seen.snapshots()) == 2 * rounds


def test_a_failed_create_table_as_and_a_dropped_schema_leave_nothing(osprey, osprey_http):
    run(osprey, "CREATE SCHEMA rest_gone")
    run(osprey, "CREATE TABLE rest_gone.kept (id BIGINT NOT NULL)")
    kept = column(run(osprey, "SHOW CREATE TABLE rest_gone.kept"), "definition")[0]
    assert "id BIGINT NOT NULL\n)\nWITH (format = 'ICEBERG', format_version = 2)" in kept
    location = rest_catalog(osprey_http).load_table("rest_gone.kept").location()
    schema_dir = pathlib.Path(location.removeprefix("file://")).parent

    def tables_on_disk():
        return [path.name.rsplit("-", 1)[0] for path in schema_dir.iterdir()]

    assert tables_on_disk() == ["kept"]
    # The rows fail while the executors write them: no table, and no files.
    message = error_of(osprey, "CREATE TABLE rest_gone.bad AS "
                               "SELECT CAST(x AS INT) AS n FROM (VALUES ('1'), ('x')) AS v(x)")
    assert "'x'" in message
    assert "does not exist" in error_of(osprey, "SELECT * FROM rest_gone.bad")
    assert tables_on_disk() == ["kept"]

    run(osprey, "DROP SCHEMA rest_gone CASCADE")
    assert tables_on_disk() == []


def test_config_lists_what_is_served(osprey_http):
    import json

    import urllib.parse

    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": "admin",
                                   "client_secret": PASSWORD}).encode()
    with urllib.request.urlopen(f"{osprey_http}/iceberg/v1/oauth/tokens", data=form) as answer:
        issued = json.load(answer)
    assert issued["token_type"] == "bearer" and issued["expires_in"] > 0
    request = urllib.request.Request(f"{osprey_http}/iceberg/v1/config",
                                     headers={"Authorization": f"Bearer {issued['access_token']}"})
    with urllib.request.urlopen(request) as answer:
        config = json.load(answer)
    assert "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}" in config["endpoints"]
    assert not any("/views" in endpoint for endpoint in config["endpoints"])
    from pyiceberg.exceptions import NoSuchNamespaceError

    catalog = rest_catalog(osprey_http)
    with pytest.raises(NoSuchNamespaceError):
        catalog.list_tables("no_such_namespace")
    with pytest.raises(Exception, match="properties"):
        catalog.update_namespace_properties("public", updates={"owner": "ana"})
