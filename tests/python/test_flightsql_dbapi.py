"""flightsql-dbapi with SQLAlchemy 1.4 and pandas: the route Superset takes to Osprey."""

import urllib.parse

import flightsql.sqlalchemy  # noqa: F401  (registers the datafusion+flightsql dialect)
import pandas as pd
import sqlalchemy as sa


def engine_for(cluster):
    address = cluster["uri"].removeprefix("grpc://")
    password = urllib.parse.quote(cluster["password"])
    return sa.create_engine(f"datafusion+flightsql://admin:{password}@{address}?insecure=true")


def test_inspector_lists_schemas_tables_and_columns(cluster):
    inspector = sa.inspect(engine_for(cluster))
    assert {"tpch", "system"} <= set(inspector.get_schema_names())
    assert "lineitem" in inspector.get_table_names(schema="tpch")
    columns = inspector.get_columns("region", schema="tpch")
    assert [c["name"] for c in columns] == ["r_regionkey", "r_name", "r_comment"]


def test_pandas_read_sql(cluster):
    frame = pd.read_sql(
        "SELECT n_name, n_regionkey FROM tpch.nation WHERE n_regionkey = 2 ORDER BY n_name",
        engine_for(cluster),
    )
    assert list(frame.columns) == ["n_name", "n_regionkey"]
    assert frame["n_name"].tolist() == ["CHINA", "INDIA", "INDONESIA", "JAPAN", "VIETNAM"]
