"""Osprey and pyiceberg commit to one Iceberg table at once: 100 appends each (two writers of
each engine, 50 rounds apiece), while Osprey also deletes. Every append survives (a lost compare-and-swap is rebuilt on top of the other
writer's commit), a delete either commits or fails with a conflict that says to run it again,
and the rows add up, read by both."""

import logging
import threading

import adbc_driver_manager
import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException

from conftest import attached_sql_catalog, column, connect, run

ROUNDS = 50
WRITERS = 2


@pytest.fixture(scope="module")
def lake(osprey, tmp_path_factory):
    """A pyiceberg SqlCatalog `busy` on SQLite, attached to Osprey as `cc`."""
    root = tmp_path_factory.mktemp("iceberg-concurrency")
    with attached_sql_catalog(osprey, root, "busy", "cc") as catalog:
        yield catalog


def test_appends_from_two_engines_all_survive(osprey, lake):
    run(osprey, "CREATE TABLE cc.db.busy (id BIGINT, writer VARCHAR)")
    # Many quick retries: two writers collide often. Deletes keep the default serializable
    # isolation: an append since a delete read the table conflicts with it.
    run(osprey, "ALTER TABLE cc.db.busy SET PROPERTIES \"commit.retry.num-retries\" = 50, "
                "\"commit.retry.min-wait-ms\" = 5, \"commit.retry.max-wait-ms\" = 200")
    errors = []
    retried = []

    class CountRetries(logging.Handler):
        """pyiceberg retries a lost commit itself, and logs each retry."""

        def emit(self, record):
            if "retrying" in record.getMessage():
                retried.append(record.getMessage())

    counter = CountRetries()
    logging.getLogger("pyiceberg").addHandler(counter)
    deleted = []
    conflicts = []

    def pyiceberg_appends(writer):
        # A catalog of its own per thread, as pyiceberg's SQLite engine is not shared.
        catalog = SqlCatalog("busy", **lake.properties)
        schema = pa.schema([pa.field("id", pa.int64()), pa.field("writer", pa.string())])
        try:
            for n in range(ROUNDS):
                rows = pa.table({"id": [1_000_000 * (writer + 1) + n], "writer": ["pyiceberg"]},
                                schema=schema)
                # pyiceberg leaves retries to its caller: reload and append again.
                for _ in range(200):
                    try:
                        catalog.load_table("db.busy").append(rows)
                        break
                    except CommitFailedException:
                        retried.append(n)
                        continue
                else:
                    raise AssertionError(f"pyiceberg's append {n} never committed")
        except Exception as err:  # reported by the main thread
            errors.append(err)

    def osprey_writes(writer):
        try:
            with connect(osprey) as conn, conn.cursor() as cur:
                for n in range(ROUNDS):
                    cur.execute(f"INSERT INTO cc.db.busy VALUES ({writer * ROUNDS + n}, 'osprey')")
                    cur.fetchall()
                    if writer == 0 and n % 5 == 4:
                        victim = n - 2
                        try:
                            cur.execute(f"DELETE FROM cc.db.busy WHERE id = {victim}")
                            assert cur.fetchall() == [(1,)]
                            deleted.append(victim)
                        except adbc_driver_manager.Error as err:
                            # A conflict, named as one, and nothing of it committed.
                            assert "(Aborted;" in str(err) and "run the statement again" in str(err), str(err)
                            conflicts.append(victim)
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(writer,))
               for work in (pyiceberg_appends, osprey_writes) for writer in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    logging.getLogger("pyiceberg").removeHandler(counter)
    assert not errors, errors
    print(f"pyiceberg appends retried {len(retried)} times; Osprey's deletes: "
          f"{len(deleted)} committed, {len(conflicts)} conflicted")
    assert all(not thread.is_alive() for thread in threads)

    osprey_ids = set(range(WRITERS * ROUNDS)) - set(deleted)
    pyiceberg_ids = {1_000_000 * (w + 1) + n for w in range(WRITERS) for n in range(ROUNDS)}
    expected = sorted(osprey_ids | pyiceberg_ids)
    ours = column(run(osprey, "SELECT id FROM cc.db.busy ORDER BY id"), "id")
    theirs = sorted(column(lake.load_table("db.busy").scan().to_arrow(), "id"))
    assert ours == theirs == expected
    assert len(deleted) + len(conflicts) == ROUNDS // 5
    # Each append is one snapshot, each committed delete one more.
    snapshots = lake.load_table("db.busy").snapshots()
    assert len(snapshots) == 2 * WRITERS * ROUNDS + len(deleted)
