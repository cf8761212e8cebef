"""The ADBC Flight SQL driver (what pandas, Polars and DuckDB users reach Osprey with)."""

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_manager
import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def connect(cluster, password=None):
    return flightsql.connect(
        cluster["uri"],
        db_kwargs={"username": "admin", "password": password or cluster["password"]},
        autocommit=True,
    )


def test_tpch_query(cluster):
    with connect(cluster) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM tpch.lineitem")
        assert cur.fetchone() == (600572,)
        cur.execute(
            "SELECT l_returnflag, l_linestatus, count(*) FROM tpch.lineitem "
            "WHERE l_shipdate <= DATE '1998-09-02' GROUP BY 1, 2 ORDER BY 1, 2"
        )
        rows = cur.fetchall()
        assert [r[:2] for r in rows] == [("A", "F"), ("N", "F"), ("N", "O"), ("R", "F")]
        assert sum(r[2] for r in rows) == 591856


def test_large_result_streams_completely(cluster):
    with connect(cluster) as conn, conn.cursor() as cur:
        cur.execute("SELECT l_orderkey, l_comment FROM tpch.lineitem")
        table = cur.fetch_arrow_table()
        assert table.num_rows == 600572
        assert table.schema.names == ["l_orderkey", "l_comment"]


def test_create_external_table_then_query(cluster, tmp_path):
    table_dir = tmp_path / "trips"
    table_dir.mkdir()
    pq.write_table(pa.table({"id": [1, 2, 3], "city": ["Oslo", "Lima", "Oslo"]}),
                   table_dir / "part-0.parquet")
    with connect(cluster) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE EXTERNAL TABLE trips STORED AS PARQUET LOCATION '{table_dir}/'")
        cur.fetchall()
        cur.execute("SELECT city, count(*) FROM trips GROUP BY city ORDER BY city")
        assert cur.fetchall() == [("Lima", 1), ("Oslo", 2)]
    # Visible from a new connection too: the table lives in the coordinator's catalog.
    with connect(cluster) as conn, conn.cursor() as cur:
        cur.execute("SELECT sum(id) FROM trips")
        assert cur.fetchone() == (6,)


def test_a_bad_csv_row_names_its_file_and_line(cluster, tmp_path):
    """Issue 30: a value that does not parse names the file and its line in the file (the
    header counted), whether the coordinator reads the file (one small file) or an executor
    does (files spread over tasks: this cluster makes a task of every 1 MiB)."""
    small = tmp_path / "small"
    small.mkdir()
    (small / "people.csv").write_text("id,name\n1,ada\n2,grace\nthree,alan\n")
    spread = tmp_path / "spread"
    spread.mkdir()
    good = "id,name\n" + "".join(f"{i},name-{i:08d}\n" for i in range(40000))
    for part in range(3):
        (spread / f"part-{part}.csv").write_text(good)
    (spread / "part-3.csv").write_text(good + "oops,late\n")
    with connect(cluster) as conn, conn.cursor() as cur:
        for name, directory, file, line in [("csv_small", small, "people.csv", 4),
                                            ("csv_spread", spread, "part-3.csv", 40002)]:
            cur.execute(f"CREATE EXTERNAL TABLE {name} (id BIGINT, name VARCHAR) "
                        f"STORED AS CSV LOCATION '{directory}/' "
                        "OPTIONS ('format.has_header' 'true')")
            cur.fetchall()
            with pytest.raises(adbc_driver_manager.ProgrammingError) as error:
                cur.execute(f"SELECT sum(id) FROM {name}")
                cur.fetchall()
            message = str(error.value)
            assert f"bad CSV data in {directory / file}, line {line}: " in message, message
            assert "Arrow error" not in message and "External error" not in message, message
        cur.execute("EXPLAIN SELECT sum(id) FROM csv_spread")
        plan = "\n".join(row[1] for row in cur.fetchall())
        assert "tasks=" in plan, plan  # the spread files are read by executors
        cur.execute("SELECT 42")
        assert cur.fetchone() == (42,)


def test_bad_sql_is_a_clear_error_and_the_connection_survives(cluster):
    with connect(cluster) as conn, conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.ProgrammingError, match="does not exist"):
            cur.execute("SELECT * FROM tpch.no_such_table")
        with pytest.raises(adbc_driver_manager.ProgrammingError, match="syntax error"):
            cur.execute("SELEC 1")
        cur.execute("SELECT 42")
        assert cur.fetchone() == (42,)


def test_wrong_password_is_refused(cluster):
    with pytest.raises(adbc_driver_manager.Error, match="invalid username or password"):
        connect(cluster, password="not-the-password")


def test_metadata_browsing_lists_everything_without_a_catalog(cluster):
    with connect(cluster) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS browse")
        cur.execute("CREATE OR REPLACE VIEW browse.big_nations AS SELECT n_name FROM tpch.nation")
        info = conn.adbc_get_info()
        assert info["vendor_name"] == "Osprey"
        assert isinstance(info["vendor_version"], str) and info["vendor_version"]
        assert info["vendor_arrow_version"] == "1.5"

        # No catalog given: every catalog, schema, table and column is listed.
        objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
        catalogs = {c["catalog_name"]: c for c in objects}
        assert "osprey" in catalogs
        schemas = {s["db_schema_name"]: s for s in catalogs["osprey"]["catalog_db_schemas"]}
        assert {"tpch", "system", "browse"} <= set(schemas)
        tables = {t["table_name"]: t for t in schemas["tpch"]["db_schema_tables"]}
        assert tables["lineitem"]["table_type"] == "BASE TABLE"
        columns = [c["column_name"] for c in tables["nation"]["table_columns"]]
        assert columns == ["n_nationkey", "n_name", "n_regionkey", "n_comment"]
        views = {t["table_name"]: t for t in schemas["browse"]["db_schema_tables"]}
        assert views["big_nations"]["table_type"] == "VIEW"

        # Patterns use % and _ (server-side table-type filters are covered by the Rust tests:
        # this driver filters table types itself).
        matched = conn.adbc_get_objects(
            depth="tables", db_schema_filter="tp%", table_name_filter="n_tion"
        ).read_all().to_pylist()
        names = [
            t["table_name"]
            for c in matched
            for s in c["catalog_db_schemas"]
            for t in s["db_schema_tables"]
        ]
        assert names == ["nation"]
        schema = conn.adbc_get_table_schema("region", db_schema_filter="tpch")
        assert schema.names == ["r_regionkey", "r_name", "r_comment"]
        assert set(conn.adbc_get_table_types()) == {"BASE TABLE", "VIEW"}


def test_execute_update_runs_ddl_and_insert(cluster):
    with connect(cluster) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS updates")
        assert cur.adbc_statement.set_sql_query("CREATE TABLE updates.t (id BIGINT)") is None
        cur.adbc_statement.execute_update()
        cur.adbc_statement.set_sql_query("INSERT INTO updates.t VALUES (1), (2), (3)")
        assert cur.adbc_statement.execute_update() == 3
        cur.execute("SELECT sum(id) FROM updates.t")
        assert cur.fetchone() == (6,)


def test_use_and_set_last_for_the_connection_only(cluster):
    with connect(cluster) as first, connect(cluster) as second:
        with first.cursor() as cur:
            cur.execute("USE tpch")
            cur.execute("SELECT count(*) FROM region")
            assert cur.fetchone() == (5,)
            cur.execute("SET TIME ZONE = '+02:00'")
            cur.execute("SHOW TIME ZONE")
            assert cur.fetchone() == ("datafusion.execution.time_zone", "+02:00")
            with pytest.raises(adbc_driver_manager.ProgrammingError, match="does not exist"):
                cur.execute("USE no_such_schema")
            with pytest.raises(adbc_driver_manager.ProgrammingError, match="batch_size"):
                cur.execute("SET datafusion.execution.batch_size = 'many'")
            # A failed USE leaves the session where it was.
            cur.execute("SELECT count(*) FROM nation")
            assert cur.fetchone() == (25,)
            cur.execute("RESET TIME ZONE")
            cur.execute("SHOW TIME ZONE")
            assert cur.fetchone() == ("datafusion.execution.time_zone", None)
        # Another connection is its own session: the default schema, no SET.
        with second.cursor() as cur:
            with pytest.raises(adbc_driver_manager.ProgrammingError, match="does not exist"):
                cur.execute("SELECT count(*) FROM region")
            cur.execute("SELECT count(*) FROM tpch.region")
            assert cur.fetchone() == (5,)


def test_parameters_bind_for_queries_and_updates(cluster):
    with connect(cluster) as conn, conn.cursor() as cur:
        cur.execute("SELECT n_name FROM tpch.nation WHERE n_nationkey = ?", (7,))
        assert cur.fetchall() == [("GERMANY",)]
        cur.execute(
            "SELECT count(*) FROM tpch.nation WHERE n_regionkey = $1 AND n_nationkey > $2",
            (1, 2),
        )
        assert cur.fetchone() == (3,)  # CANADA, PERU, UNITED STATES
        # Several parameter rows: one result per row, in order.
        cur.execute("CREATE SCHEMA IF NOT EXISTS params")
        cur.execute("CREATE TABLE params.t (id BIGINT, name VARCHAR)")
        cur.executemany("INSERT INTO params.t VALUES (?, ?)", [(1, "ana"), (2, "bo"), (3, "cy")])
        cur.execute("SELECT id, name FROM params.t ORDER BY id")
        assert cur.fetchall() == [(1, "ana"), (2, "bo"), (3, "cy")]
    # A placeholder without a value is a clear error.
    with connect(cluster) as conn, conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.ProgrammingError, match="no parameter values"):
            cur.execute("SELECT ? + 1")


def test_bearer_header_instead_of_password(cluster):
    import pyarrow.flight as flight

    client = flight.FlightClient(cluster["uri"])
    _, bearer = client.authenticate_basic_token("admin", cluster["password"])
    with flightsql.connect(
        cluster["uri"],
        db_kwargs={"adbc.flight.sql.authorization_header": bearer.decode()},
        autocommit=True,
    ) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM tpch.region")
        assert cur.fetchone() == (5,)
    with pytest.raises(adbc_driver_manager.Error):
        with flightsql.connect(
            cluster["uri"],
            db_kwargs={"adbc.flight.sql.authorization_header": "Bearer not-a-token"},
            autocommit=True,
        ) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
