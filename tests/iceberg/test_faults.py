"""Faults in the middle of Iceberg writes: the coordinator killed between writing a commit's
files and the catalog's compare-and-swap, and an executor killed in the middle of an INSERT.
Nothing becomes visible, a retry succeeds, and `remove_orphan_files` removes what the dead
write left."""

import os
import pathlib
import signal
import sqlite3
import threading
import time

import adbc_driver_manager
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from conftest import client_conftest, column, connect, table_dir

ATTACH = ("CREATE CATALOG ft USING iceberg WITH (type = 'sql', uri = 'sqlite://{root}/catalog.db', "
          "catalog_name = 'faults', warehouse = 'file://{root}/warehouse')")


@pytest.fixture
def lake(tmp_path):
    (tmp_path / "warehouse").mkdir()
    catalog = SqlCatalog("faults", uri=f"sqlite:///{tmp_path}/catalog.db",
                         warehouse=f"file://{tmp_path}/warehouse")
    catalog.create_namespace("db")
    return catalog, tmp_path


def execute(uri, *statements):
    """Runs STATEMENTS in one session; the rows of the last."""
    with connect(uri) as conn, conn.cursor() as cur:
        rows = None
        for statement in statements:
            cur.execute(statement)
            rows = cur.fetchall()
        return rows


def files_under(directory):
    return {str(p) for p in pathlib.Path(directory).rglob("*") if p.is_file()}


def test_coordinator_killed_before_the_catalog_swap(lake):
    catalog, root = lake
    with client_conftest.osprey_local_process("--executors", "1", "--tpch-scale", "0",
                                              "--data-dir", str(root / "osprey-1")) as (proc, uri, _):
        execute(uri, ATTACH.format(root=root), "CREATE TABLE ft.db.t (id BIGINT)",
                "INSERT INTO ft.db.t VALUES (1), (2)")
        location = table_dir(catalog.load_table("db.t"))
        before = files_under(location)
        metadata_dir = pathlib.Path(location) / "metadata"
        known_metadata = set(metadata_dir.glob("*.metadata.json"))

        # Hold the catalog database for writing (readers go on): the commit's conditional
        # UPDATE waits for it.
        holder = sqlite3.connect(root / "catalog.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        failure = []
        writer = threading.Thread(target=lambda: failure.append(_fails(
            uri, "INSERT INTO ft.db.t SELECT * FROM (SELECT unnest(range(10, 20)) AS id)")))
        writer.start()
        # The next metadata file is the last thing written before the swap.
        deadline = time.monotonic() + 60
        while not set(metadata_dir.glob("*.metadata.json")) - known_metadata:
            assert time.monotonic() < deadline, "the INSERT never reached its commit"
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        holder.execute("ROLLBACK")
        holder.close()
        writer.join(60)
        assert failure == [True]

    # Nothing is visible: the table is at its old snapshot.
    table = catalog.load_table("db.t")
    assert sorted(column(table.scan().to_arrow(), "id")) == [1, 2]
    assert len(table.snapshots()) == 1
    orphans = files_under(location) - before
    assert any(f.endswith(".parquet") for f in orphans)
    assert any(f.endswith(".metadata.json") for f in orphans)

    # A new coordinator: the orphans are removed, and the INSERT, run again, succeeds.
    with client_conftest.osprey_local("--executors", "1", "--tpch-scale", "0",
                                      "--data-dir", str(root / "osprey-2")) as uri:
        execute(uri, ATTACH.format(root=root))
        removed = execute(uri, "ALTER TABLE ft.db.t EXECUTE "
                               "remove_orphan_files(retention_threshold => '0s')")
        assert removed[0][1] == len(orphans)
        assert files_under(location) == before
        execute(uri, "INSERT INTO ft.db.t SELECT * FROM (SELECT unnest(range(10, 20)) AS id)")
        ids = execute(uri, "SELECT id FROM ft.db.t ORDER BY id")
        assert [row[0] for row in ids] == [1, 2] + list(range(10, 20))
    assert len(catalog.load_table("db.t").snapshots()) == 2


def _fails(uri, sql):
    """Whether SQL fails (the coordinator is killed under it)."""
    try:
        execute(uri, sql)
        return False
    except (adbc_driver_manager.Error, RuntimeError):
        return True


def executors_of(proc):
    """The pids of an `osprey local`'s executor processes."""
    children = pathlib.Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    return [int(pid) for pid in children
            if b"executor" in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()]


def test_executor_killed_in_the_middle_of_an_insert(lake):
    catalog, root = lake
    with client_conftest.osprey_local_process("--executors", "2", "--tpch-scale", "0",
                                              "--data-dir", str(root / "osprey")) as (proc, uri, _):
        execute(uri, ATTACH.format(root=root), "CREATE TABLE ft.db.big (id BIGINT, text VARCHAR)",
                "INSERT INTO ft.db.big VALUES (0, 'first')")
        location = table_dir(catalog.load_table("db.big"))
        before = files_under(location)
        outcome = []
        big_insert = ("INSERT INTO ft.db.big SELECT id, repeat(CAST(id AS VARCHAR), 20) FROM "
                      "(SELECT unnest(range(1, 20000001)) AS id)")
        writer = threading.Thread(target=lambda: outcome.append(_fails(uri, big_insert)))
        writer.start()
        # Once the INSERT runs, one executor dies.
        deadline = time.monotonic() + 60
        while True:
            running = execute(uri, "SELECT count(*) FROM system.queries WHERE state = 'RUNNING' "
                                   "AND query LIKE 'INSERT INTO ft.db.big SELECT%'")
            if running[0][0] == 1:
                break
            assert time.monotonic() < deadline, "the INSERT never started"
            time.sleep(0.05)
        time.sleep(1.0)
        victim = executors_of(proc)[0]
        os.kill(victim, signal.SIGKILL)
        writer.join(600)
        assert outcome, "the INSERT never answered"
        print("the INSERT", "failed" if outcome == [True] else "was rerun and succeeded")
        table = catalog.load_table("db.big")
        count = execute(uri, "SELECT count(*) FROM ft.db.big")[0][0]
        if outcome == [True]:
            # It failed: nothing is visible, and its files are gone.
            assert len(table.snapshots()) == 1 and count == 1
            assert files_under(location) == before
        else:
            # It was run again on the executor left: every row is there, once.
            assert len(table.snapshots()) == 2 and count == 20_000_001
        # Either way, the table takes the next write.
        execute(uri, "INSERT INTO ft.db.big VALUES (-1, 'after')")
        assert execute(uri, "SELECT count(*) FROM ft.db.big WHERE id = -1")[0][0] == 1
