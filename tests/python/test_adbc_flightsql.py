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


def test_bad_sql_is_a_clear_error_and_the_connection_survives(cluster):
    with connect(cluster) as conn, conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.ProgrammingError, match="not found"):
            cur.execute("SELECT * FROM tpch.no_such_table")
        with pytest.raises(adbc_driver_manager.ProgrammingError, match="SQL error"):
            cur.execute("SELEC 1")
        cur.execute("SELECT 42")
        assert cur.fetchone() == (42,)


def test_wrong_password_is_refused(cluster):
    with pytest.raises(adbc_driver_manager.Error, match="invalid username or password"):
        connect(cluster, password="not-the-password")
