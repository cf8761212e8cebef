"""The Trino client protocol, driven by the unmodified `trino` Python client (DB-API, its
SQLAlchemy dialect, pandas) over HTTPS with Basic authentication, as a Trino user would."""

import datetime
import decimal
import threading
import time
import urllib.parse

import pandas as pd
import pytest
import requests
import sqlalchemy as sa
import trino
from trino.auth import BasicAuthentication

from conftest import PASSWORD, make_test_certs, osprey_local_servers


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """An `osprey local` with TPC-H SF0.01 and TLS on both ports; the Trino client refuses to
    send a password over plain HTTP."""
    certs = make_test_certs(tmp_path_factory.mktemp("certs"))
    data_dir = tmp_path_factory.mktemp("osprey-trino")
    with osprey_local_servers("--executors", "1", "--tpch-scale", "0.01",
                              "--data-dir", str(data_dir),
                              "--tls-cert", str(certs["cert"]),
                              "--tls-key", str(certs["key"])) as (_, base):
        url = urllib.parse.urlsplit(base)
        assert url.scheme == "https"
        yield {"host": url.hostname, "port": url.port, "ca": str(certs["ca"])}


def http_session(server):
    """A requests session trusting the test CA (and ignoring REQUESTS_CA_BUNDLE and proxies
    from the environment, which would override it)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = server["ca"]
    return session


def connect(server, user="admin", password=PASSWORD, schema="tpch", **kwargs):
    return trino.dbapi.connect(
        host=server["host"], port=server["port"], user=user,
        auth=BasicAuthentication(user, password), http_scheme="https",
        http_session=http_session(server), catalog="osprey", schema=schema, **kwargs)


def run(server, sql, params=None, **kwargs):
    with connect(server, **kwargs) as conn:
        cur = conn.cursor()
        cur.execute(sql, params)
        return cur.fetchall(), cur.description


def test_every_type_arrives_as_the_python_type_trino_gives(server):
    rows, description = run(server, """
        SELECT true AS flag, CAST(7 AS TINYINT) AS tiny, CAST(300 AS SMALLINT) AS small,
               CAST(70000 AS INT) AS medium, 9007199254740993 AS big,
               CAST(1.5 AS REAL) AS single, CAST(2.25 AS DOUBLE) AS double_value,
               CAST('-12345.67' AS DECIMAL(12,2)) AS price, 'héllo' AS text,
               X'00ff10' AS bytes, DATE '2024-02-29' AS day,
               TIMESTAMP '2024-02-29 13:14:15.123456' AS moment,
               arrow_cast(TIMESTAMP '2024-02-29 13:14:15.250', 'Timestamp(Millisecond, Some("+01:00"))') AS zoned,
               [1, 2, NULL] AS numbers, map(['a', 'b'], [1, 2]) AS pairs,
               named_struct('x', 1, 'y', 'why') AS pair, NULL AS nothing,
               CAST(NULL AS VARCHAR) AS missing_text, 'NaN'::double AS not_a_number
    """)
    types = {column.name: column.type_code for column in description}
    assert types == {
        "flag": "boolean", "tiny": "tinyint", "small": "smallint", "medium": "integer",
        "big": "bigint", "single": "real", "double_value": "double", "price": "decimal(12,2)",
        "text": "varchar", "bytes": "varbinary", "day": "date", "moment": "timestamp(9)",
        "zoned": "timestamp(3) with time zone", "numbers": "array(bigint)",
        "pairs": "map(varchar,bigint)", "pair": "row(x bigint, y varchar)",
        "nothing": "unknown", "missing_text": "varchar", "not_a_number": "double",
    }
    (row,) = rows
    values = dict(zip([column.name for column in description], row))
    plus_one = datetime.timezone(datetime.timedelta(hours=1))
    assert values["flag"] is True
    assert (values["tiny"], values["small"], values["medium"]) == (7, 300, 70000)
    assert values["big"] == 9007199254740993
    assert (values["single"], values["double_value"]) == (1.5, 2.25)
    assert values["price"] == decimal.Decimal("-12345.67")
    assert values["text"] == "héllo"
    assert values["bytes"] == b"\x00\xff\x10"
    assert values["day"] == datetime.date(2024, 2, 29)
    assert values["moment"] == datetime.datetime(2024, 2, 29, 13, 14, 15, 123456)
    assert values["zoned"] == datetime.datetime(2024, 2, 29, 13, 14, 15, 250000, plus_one)
    assert values["numbers"] == [1, 2, None]
    assert values["pairs"] == {"a": 1, "b": 2}
    assert tuple(values["pair"]) == (1, "why") and values["pair"].x == 1
    assert values["nothing"] is None and values["missing_text"] is None
    assert values["not_a_number"] != values["not_a_number"]  # NaN


def test_parameters_are_bound(server):
    rows, _ = run(server, "SELECT n_name FROM nation WHERE n_nationkey = ? AND n_name LIKE ?",
                  [7, "G%"])
    assert rows == [["GERMANY"]]
    rows, _ = run(server, "SELECT ? AS day, ? AS amount",
                  [datetime.date(2024, 1, 31), decimal.Decimal("1.50")])
    assert rows == [[datetime.date(2024, 1, 31), decimal.Decimal("1.50")]]


def test_a_large_result_arrives_in_pages_and_complete(server):
    pages = []
    with connect(server) as conn:
        cur = conn.cursor()
        cur.execute("SELECT l_orderkey, l_linenumber FROM lineitem")
        rows = cur.fetchall()
        pages.append(cur.stats)
    (expected,), _ = run(server, "SELECT count(*) FROM lineitem")
    assert len(rows) == expected[0] > 50_000
    assert len({(key, line) for key, line in rows}) == len(rows)
    assert pages[0]["state"] == "FINISHED" and pages[0]["processedRows"] == len(rows)


def test_ddl_writes_and_their_update_counts(server):
    with connect(server, schema="public") as conn:
        cur = conn.cursor()
        cur.execute("CREATE TABLE trino_made (id INT, label VARCHAR)")
        assert cur.fetchall() == [] and cur.update_type == "CREATE TABLE"
        cur.execute("INSERT INTO trino_made VALUES (1, 'one'), (2, 'two')")
        assert cur.fetchall() == [[2]]
        assert (cur.update_type, cur.rowcount) == ("INSERT", 2)
        cur.execute("INSERT INTO trino_made VALUES (?, ?)", [3, "three"])
        assert cur.fetchall() == [[1]]
        cur.execute("SELECT id, label FROM trino_made ORDER BY id")
        assert cur.fetchall() == [[1, "one"], [2, "two"], [3, "three"]]
        cur.execute("DROP TABLE trino_made")
        assert cur.update_type == "DROP TABLE"


def test_use_and_set_travel_back_to_the_client_session(server):
    with connect(server, schema="public") as conn:
        cur = conn.cursor()
        cur.execute("USE tpch")
        cur.fetchall()
        assert conn._client_session.schema == "tpch"
        cur.execute("SELECT count(*) FROM region")  # unqualified: resolved in tpch now
        assert cur.fetchall() == [[5]]
        cur.execute("SET datafusion.execution.batch_size = 1234")
        cur.fetchall()
        assert conn._client_session.properties == {"datafusion.execution.batch_size": "1234"}
        cur.execute("SELECT value FROM information_schema.df_settings "
                    "WHERE name = 'datafusion.execution.batch_size'")
        assert cur.fetchall() == [["1234"]]


def test_errors_are_trino_errors_and_the_server_carries_on(server):
    with pytest.raises(trino.exceptions.TrinoUserError) as error:
        run(server, "SELECT no_such_column FROM nation")
    assert error.value.error_name == "COLUMN_NOT_FOUND"
    assert error.value.error_code == 47
    assert "no_such_column" in error.value.message
    assert error.value.failure_info["type"] == "osprey.COLUMN_NOT_FOUND"
    with pytest.raises(trino.exceptions.TrinoUserError) as error:
        run(server, "SELECT * FROM natoin")
    assert error.value.error_name == "TABLE_NOT_FOUND"
    assert error.value.error_code == 46
    assert "Did you mean nation?" in error.value.message
    with pytest.raises(trino.exceptions.TrinoUserError) as error:
        run(server, "SELECT n_name\nFROM nation\nWHERE n_nationkey = = 1")
    assert error.value.error_name == "SYNTAX_ERROR"
    assert error.value.error_location == (3, 21)
    assert error.value.message.startswith("syntax error: ")
    with pytest.raises(trino.exceptions.TrinoUserError) as error:
        run(server, "SELECT 1 / 0")
    assert error.value.error_name == "INVALID_FUNCTION_ARGUMENT"
    assert error.value.message == "division by zero"
    with pytest.raises(trino.exceptions.TrinoUserError):
        run(server, "EXECUTE IMMEDIATE 'SELECT ?' USING (SELECT n_name FROM nation)")
    assert run(server, "SELECT 'still here'")[0] == [["still here"]]


def test_listings_have_trinos_columns_and_types(server):
    rows, description = run(server, "SHOW TABLES")
    assert [column[0] for column in description] == ["Table"]
    assert ["nation"] in rows and ["lineitem"] in rows
    rows, description = run(server, "SHOW SCHEMAS")
    assert [column[0] for column in description] == ["Schema"]
    assert ["tpch"] in rows
    rows, description = run(server, "SHOW COLUMNS FROM nation")
    assert [column[0] for column in description] == ["Column", "Type", "Extra", "Comment"]
    assert rows[0] == ["n_nationkey", "bigint", "", ""]
    assert rows[1] == ["n_name", "varchar", "", ""]
    assert run(server, "DESCRIBE nation")[0] == rows


def test_aggregates_have_trinos_result_types(server):
    rows, description = run(server, "SELECT approx_distinct(n_regionkey) AS d, count(*) AS c, "
                                    "sum(n_nationkey) AS s, avg(n_nationkey) AS a FROM nation")
    assert {column[0]: column[1] for column in description} == {
        "d": "bigint", "c": "bigint", "s": "bigint", "a": "double"}
    assert rows == [[5, 25, 300, 12.0]]


def test_credentials_and_identity_are_checked(server):
    with pytest.raises(trino.exceptions.HttpError, match="401"):
        run(server, "SELECT 1", password="wrong")
    with connect(server) as admin:
        admin.cursor().execute("CREATE USER IF NOT EXISTS trino_carol PASSWORD 'carol-pw'").fetchall()
    assert run(server, "SELECT 'carol'", user="trino_carol", password="carol-pw")[0] == [["carol"]]
    # Authenticated as one user, claiming to be another in X-Trino-User: refused.
    with trino.dbapi.connect(host=server["host"], port=server["port"], user="admin",
                             auth=BasicAuthentication("trino_carol", "carol-pw"),
                             http_scheme="https", http_session=http_session(server)) as conn:
        with pytest.raises(trino.exceptions.HttpError, match="403"):
            conn.cursor().execute("SELECT 1")
    with pytest.raises(requests.exceptions.ConnectionError):  # plain HTTP to the HTTPS port
        requests.post(f"http://{server['host']}:{server['port']}/v1/statement",
                      data="SELECT 1", timeout=10)


def test_sqlalchemy_inspector_sees_schemas_tables_columns_and_views(server):
    engine = sa.create_engine(
        f"trino://admin@{server['host']}:{server['port']}/osprey/tpch",
        connect_args={"auth": BasicAuthentication("admin", PASSWORD), "http_scheme": "https",
                      "http_session": http_session(server)})
    with engine.connect() as conn:
        conn.execute(sa.text("CREATE VIEW public.big_orders AS "
                             "SELECT o_orderkey, o_totalprice FROM tpch.orders "
                             "WHERE o_totalprice > 400000"))
    inspector = sa.inspect(engine)
    assert {"tpch", "public", "information_schema"} <= set(inspector.get_schema_names())
    assert set(inspector.get_table_names("tpch")) == {
        "customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier"}
    assert inspector.get_view_names("public") == ["big_orders"]
    assert "o_totalprice > 400000" in inspector.get_view_definition("big_orders", "public")
    columns = {column["name"]: column for column in inspector.get_columns("lineitem", "tpch")}
    assert isinstance(columns["l_orderkey"]["type"], sa.types.BIGINT)
    assert isinstance(columns["l_comment"]["type"], sa.types.VARCHAR)
    assert isinstance(columns["l_extendedprice"]["type"], sa.types.DECIMAL)
    assert (columns["l_extendedprice"]["type"].precision,
            columns["l_extendedprice"]["type"].scale) == (15, 2)
    assert isinstance(columns["l_shipdate"]["type"], sa.types.DATE)
    assert columns["l_orderkey"]["nullable"] is False
    assert inspector.has_table("nation", "tpch") and not inspector.has_table("nope", "tpch")
    assert inspector.get_table_comment("nation", "tpch") == {"text": None}
    with engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version()")).scalar()
        assert isinstance(version, str) and version
        catalogs = [row[0] for row in conn.execute(sa.text(
            'SELECT "table_cat" FROM "system"."jdbc"."catalogs"'))]
        assert "osprey" in catalogs
        conn.execute(sa.text("DROP VIEW public.big_orders"))


def test_pandas_reads_through_sqlalchemy(server):
    engine = sa.create_engine(
        f"trino://admin@{server['host']}:{server['port']}/osprey/tpch",
        connect_args={"auth": BasicAuthentication("admin", PASSWORD), "http_scheme": "https",
                      "http_session": http_session(server)})
    frame = pd.read_sql(sa.text("SELECT n_name, n_regionkey FROM nation "
                                "WHERE n_regionkey = :region ORDER BY n_name"),
                        engine, params={"region": 1})
    assert list(frame.columns) == ["n_name", "n_regionkey"]
    assert frame["n_name"].tolist() == ["ARGENTINA", "BRAZIL", "CANADA", "PERU", "UNITED STATES"]


def test_cancel_stops_a_running_query(server):
    endless = ("SELECT count(*) FROM (SELECT * FROM range(200000)) a, "
               "(SELECT * FROM range(200000)) b WHERE a.value < b.value")
    with connect(server) as conn:
        cur = conn.cursor()
        outcome = {}

        def execute():
            started = time.monotonic()
            try:
                cur.execute(endless)
                outcome["rows"] = cur.fetchall()
            except Exception as err:  # what the client raises after a cancel
                outcome["error"] = err
            outcome["seconds"] = time.monotonic() - started

        worker = threading.Thread(target=execute)
        worker.start()
        deadline = time.monotonic() + 30
        while cur.query_id is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        cur.cancel()
        worker.join(30)
        assert not worker.is_alive()
        assert "rows" not in outcome or outcome["rows"] == [], outcome
        assert outcome["seconds"] < 20
        query_id = cur.query_id
    # The history records the cancel.
    deadline = time.monotonic() + 10
    state = None
    while time.monotonic() < deadline:
        rows, _ = run(server, f"SELECT state FROM system.queries WHERE query_id = '{query_id}'",
                      schema="public")
        state = rows[0][0] if rows else None
        if state == "CANCELLED":
            break
        time.sleep(0.2)
    assert state == "CANCELLED"


def test_the_protocol_replays_retries_and_guards_its_uris(server):
    """The raw protocol, as a client library sees it: a retried GET gets the same page, a
    token out of sequence is refused, another user cannot follow the URIs, DELETE ends it."""
    session = http_session(server)
    base = f"https://{server['host']}:{server['port']}"
    admin = ("admin", PASSWORD)
    first = session.post(f"{base}/v1/statement", data="SELECT value FROM range(25000)",
                         auth=admin, headers={"X-Trino-User": "admin"}, timeout=30).json()
    assert first["stats"]["state"] == "QUEUED" and "nextUri" in first and "id" in first
    page = session.get(first["nextUri"], auth=admin, timeout=30).json()
    while "data" not in page and "nextUri" in page:
        page = session.get(page["nextUri"], auth=admin, timeout=30).json()
    assert page["columns"][0]["type"] == "bigint"
    assert 0 < len(page["data"]) <= 10_000
    uri = page["nextUri"]
    following = session.get(uri, auth=admin, timeout=30).json()
    again = session.get(uri, auth=admin, timeout=30).json()
    assert again == following  # a retried request is answered the same
    skipped = session.get(uri.rsplit("/", 1)[0] + "/999", auth=admin, timeout=30)
    assert skipped.status_code == 410 and skipped.json()["error"]["code"] == "INVALID_TOKEN"
    session.post(f"{base}/v1/statement", data="CREATE USER IF NOT EXISTS trino_dave PASSWORD 'd'",
                 auth=admin, timeout=30)
    for _ in range(20):  # the CREATE USER runs in the background from its POST
        if session.get(f"{base}/v1/whoami", auth=("trino_dave", "d"), timeout=30).ok:
            break
        time.sleep(0.1)
    stranger = session.get(following["nextUri"], auth=("trino_dave", "d"), timeout=30)
    assert stranger.status_code == 404
    assert session.delete(following["nextUri"], auth=admin, timeout=30).status_code == 204
    assert session.get(following["nextUri"], auth=admin, timeout=30).status_code == 404
    # Trino clients (X-Trino-User) are challenged for Basic credentials; anything else (a
    # browser) is not, so it never caches them.
    unauthenticated = session.post(f"{base}/v1/statement", data="SELECT 1",
                                   headers={"X-Trino-User": "admin"}, timeout=30)
    assert unauthenticated.status_code == 401
    assert "Basic" in unauthenticated.headers["WWW-Authenticate"]
    anonymous = session.post(f"{base}/v1/statement", data="SELECT 1", timeout=30)
    assert anonymous.status_code == 401
    assert "Basic" not in anonymous.headers["WWW-Authenticate"]


def test_a_statement_waiting_for_its_workgroup_is_queued_with_its_time(server):
    session = http_session(server)
    base = f"https://{server['host']}:{server['port']}"
    run(server, "CREATE WORKGROUP trino_solo WITH (max_concurrent_queries = 1)", schema="public")
    run(server, "CREATE USER trino_quinn PASSWORD 'q' WORKGROUP trino_solo", schema="public")
    quinn = ("trino_quinn", "q")
    headers = {"X-Trino-User": "trino_quinn"}

    def follow(answer, until):
        """Follows nextUri until `until(answer)` or the statement ends; the last answer."""
        deadline = time.monotonic() + 30
        while not until(answer) and "nextUri" in answer and time.monotonic() < deadline:
            answer = session.get(answer["nextUri"], auth=quinn, timeout=30).json()
        return answer

    endless = ("SELECT count(*) FROM (SELECT * FROM range(200000)) a, "
               "(SELECT * FROM range(200000)) b WHERE a.value < b.value")
    running = session.post(f"{base}/v1/statement", data=endless, auth=quinn, headers=headers,
                           timeout=30).json()
    running = follow(running, lambda a: a["stats"]["state"] == "RUNNING")
    assert running["stats"]["state"] == "RUNNING", running
    waiting = session.post(f"{base}/v1/statement", data="SELECT 1 AS one", auth=quinn,
                           headers=headers, timeout=30).json()
    waiting = follow(waiting, lambda a: a["stats"].get("queuedTimeMillis", 0) > 0)
    assert waiting["stats"]["state"] == "QUEUED", waiting
    assert waiting["stats"]["queued"] is True and waiting["stats"]["queuedTimeMillis"] > 0
    # Cancelling the running one lets the queued one run to its answer.
    assert session.delete(running["nextUri"], auth=quinn, timeout=30).status_code == 204
    done = follow(waiting, lambda a: "data" in a)
    assert done.get("data") == [[1]], done
    assert done["stats"]["queuedTimeMillis"] > 0
