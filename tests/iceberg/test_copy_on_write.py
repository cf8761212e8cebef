"""DELETE, UPDATE and MERGE in copy-on-write mode (`write.delete.mode`, `write.update.mode`,
`write.merge.mode` = 'copy-on-write'): every data file with a changed row is rewritten, the
old file leaves the table in the same snapshot, and no delete file is written. pyiceberg (the
independent reader) checks the files and the rows after each change."""

import pytest

from conftest import attached_sql_catalog, column, error_of, run

COW = ("ALTER TABLE cw.db.{table} SET PROPERTIES \"write.delete.mode\" = 'copy-on-write', "
       "\"write.update.mode\" = 'copy-on-write', \"write.merge.mode\" = 'copy-on-write'")


@pytest.fixture(scope="module")
def lake(osprey, tmp_path_factory):
    """A pyiceberg SqlCatalog `cow` on SQLite, attached to Osprey as `cw`."""
    root = tmp_path_factory.mktemp("iceberg-cow")
    with attached_sql_catalog(osprey, root, "cow", "cw") as catalog:
        yield catalog


def make_table(osprey, name, mode="copy-on-write"):
    """cw.db.NAME partitioned by `part` (ids 0..29 over 3 partitions, two inserts: 6 files)."""
    run(osprey, f"CREATE TABLE cw.db.{name} (id BIGINT, part VARCHAR, v BIGINT) "
                f"WITH (partitioning = ARRAY['part'])")
    if mode == "copy-on-write":
        run(osprey, COW.format(table=name))
    for low, high in [(0, 15), (15, 30)]:
        run(osprey, f"INSERT INTO cw.db.{name} SELECT id, 'p' || CAST(id % 3 AS VARCHAR), id * 10 "
                    f"FROM (SELECT unnest(range({low}, {high})) AS id)")


def files_and_deletes(table):
    """The data files pyiceberg plans, and how many delete files apply to them."""
    tasks = list(table.scan().plan_files())
    return {task.file.file_path for task in tasks}, sum(len(task.delete_files) for task in tasks)


def rows(osprey, lake, name):
    """The rows, as Osprey and as pyiceberg read them (they must agree)."""
    ours = run(osprey, f"SELECT id, part, v FROM cw.db.{name} ORDER BY id").to_pylist()
    theirs = sorted(lake.load_table(f"db.{name}").scan().to_arrow().to_pylist(),
                    key=lambda row: row["id"])
    assert ours == theirs
    return ours


def test_delete_rewrites_only_the_files_it_touches(osprey, lake):
    make_table(osprey, "d")
    before, _ = files_and_deletes(lake.load_table("db.d"))
    assert len(before) == 6

    # Rows of partition p1 only: its two files are rewritten (as one: the rewrite writes a
    # partition per file), the other four stay.
    assert column(run(osprey, "DELETE FROM cw.db.d WHERE id IN (1, 4, 28)"), "count") == [3]
    table = lake.load_table("db.d")
    after, deletes = files_and_deletes(table)
    assert deletes == 0
    assert len(after & before) == 4 and len(after - before) == 1
    summary = table.current_snapshot().summary
    assert summary["operation"].value == "overwrite"
    assert summary["deleted-data-files"] == "2" and summary["added-data-files"] == "1"
    assert summary["total-records"] == "27"
    assert [row["id"] for row in rows(osprey, lake, "d")] == [
        i for i in range(30) if i not in (1, 4, 28)]

    # Every row of a file deleted: the file goes and nothing replaces it.
    run(osprey, "DELETE FROM cw.db.d WHERE part = 'p0' AND id < 15")
    after2, deletes = files_and_deletes(lake.load_table("db.d"))
    assert deletes == 0 and len(after2) == 4
    assert lake.load_table("db.d").current_snapshot().summary["operation"].value == "delete"
    assert len(rows(osprey, lake, "d")) == 27 - 5

    # No row matched: no commit.
    snapshot = lake.load_table("db.d").current_snapshot().snapshot_id
    assert column(run(osprey, "DELETE FROM cw.db.d WHERE id > 1000"), "count") == [0]
    assert lake.load_table("db.d").current_snapshot().snapshot_id == snapshot


def test_update_and_merge_rewrite_files(osprey, lake):
    make_table(osprey, "u")
    run(osprey, "UPDATE cw.db.u SET v = -v, part = 'moved' WHERE id % 10 = 0")
    _, deletes = files_and_deletes(lake.load_table("db.u"))
    assert deletes == 0
    expected = {i: ("moved" if i % 10 == 0 else f"p{i % 3}", -i * 10 if i % 10 == 0 else i * 10)
                for i in range(30)}
    assert {r["id"]: (r["part"], r["v"]) for r in rows(osprey, lake, "u")} == expected

    run(osprey, "MERGE INTO cw.db.u AS t USING (SELECT unnest(range(25, 35)) AS id) AS s "
                "ON t.id = s.id "
                "WHEN MATCHED AND s.id % 2 = 0 THEN DELETE "
                "WHEN MATCHED THEN UPDATE SET v = 7 "
                "WHEN NOT MATCHED THEN INSERT VALUES (s.id, 'new', 0)")
    _, deletes = files_and_deletes(lake.load_table("db.u"))
    assert deletes == 0
    for i in range(25, 35):
        if i >= 30:
            expected[i] = ("new", 0)
        elif i % 2 == 0:
            del expected[i]
        else:
            expected[i] = (expected[i][0], 7)
    assert {r["id"]: (r["part"], r["v"]) for r in rows(osprey, lake, "u")} == expected


def test_copy_on_write_after_merge_on_read_deletes(osprey, lake):
    """Rows already deleted by position deletes stay deleted when their file is rewritten."""
    make_table(osprey, "mixed", mode="merge-on-read")
    run(osprey, "DELETE FROM cw.db.mixed WHERE id IN (3, 6)")
    _, deletes = files_and_deletes(lake.load_table("db.mixed"))
    assert deletes > 0
    run(osprey, COW.format(table="mixed"))
    run(osprey, "DELETE FROM cw.db.mixed WHERE id = 9")
    files, deletes = files_and_deletes(lake.load_table("db.mixed"))
    # The p0 file of the first insert was rewritten without 3, 6 and 9, and the delete file
    # scoped to it left with it.
    assert deletes == 0
    summary = lake.load_table("db.mixed").current_snapshot().summary
    assert summary["removed-position-delete-files"] == "1"
    assert summary["total-delete-files"] == "0" and summary["total-position-deletes"] == "0"
    assert [r["id"] for r in rows(osprey, lake, "mixed")] == [
        i for i in range(30) if i not in (3, 6, 9)]


def test_an_unknown_mode_is_refused(osprey, lake):
    run(osprey, "CREATE TABLE cw.db.odd (id BIGINT)")
    run(osprey, "INSERT INTO cw.db.odd VALUES (1)")
    run(osprey, "ALTER TABLE cw.db.odd SET PROPERTIES \"write.delete.mode\" = 'sideways'")
    message = error_of(osprey, "DELETE FROM cw.db.odd WHERE id = 1")
    assert "write.delete.mode" in message and "copy-on-write" in message
