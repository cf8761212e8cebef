"""Table maintenance as Trino spells it (`ALTER TABLE t EXECUTE optimize | expire_snapshots |
remove_orphan_files | rewrite_manifests`) on the Iceberg tables of attached catalogs. Each
answers one row of figures; pyiceberg (the independent reader) checks the files and the rows
after each."""

import os
import pathlib
import time

import pytest

from conftest import attached_sql_catalog, column, error_of, run, table_dir


@pytest.fixture(scope="module")
def lake(osprey, tmp_path_factory):
    """A pyiceberg SqlCatalog `upkeep` on SQLite, attached to Osprey as `mt`."""
    root = tmp_path_factory.mktemp("iceberg-maintenance")
    with attached_sql_catalog(osprey, root, "upkeep", "mt") as catalog:
        yield catalog


def small_files_table(osprey, name, inserts=4):
    """mt.db.NAME partitioned by `part` (3 partitions), one small file per partition and
    insert."""
    run(osprey, f"CREATE TABLE mt.db.{name} (id BIGINT, part VARCHAR) "
                f"WITH (partitioning = ARRAY['part'])")
    for n in range(inserts):
        run(osprey, f"INSERT INTO mt.db.{name} SELECT id, 'p' || CAST(id % 3 AS VARCHAR) "
                    f"FROM (SELECT unnest(range({n * 30}, {n * 30 + 30})) AS id)")


def plan(table):
    """The data files pyiceberg plans, and how many distinct delete files apply to them."""
    tasks = list(table.scan().plan_files())
    deletes = {d.file_path for task in tasks for d in task.delete_files}
    return [task.file.file_path for task in tasks], len(deletes)


def ids(osprey, lake, name):
    """The ids, as Osprey and pyiceberg read them (they must agree)."""
    ours = column(run(osprey, f"SELECT id FROM mt.db.{name} ORDER BY id"), "id")
    theirs = sorted(column(lake.load_table(f"db.{name}").scan().to_arrow(), "id"))
    assert ours == theirs
    return ours


def test_optimize_compacts_small_files_and_folds_deletes(osprey, lake):
    small_files_table(osprey, "compact")
    run(osprey, "DELETE FROM mt.db.compact WHERE id % 10 = 0")
    before_files, before_deletes = plan(lake.load_table("db.compact"))
    assert len(before_files) == 12 and before_deletes > 0
    expected = [i for i in range(120) if i % 10]
    assert ids(osprey, lake, "compact") == expected

    result = run(osprey, "ALTER TABLE mt.db.compact EXECUTE optimize(file_size_threshold => '10MB')")
    assert result.column_names == ["rewritten_data_files_count", "rewritten_bytes_count",
                                   "removed_delete_files_count", "added_data_files_count"]
    row = result.to_pylist()[0]
    assert row["rewritten_data_files_count"] == 12
    assert row["added_data_files_count"] == 3
    assert row["removed_delete_files_count"] == before_deletes
    assert row["rewritten_bytes_count"] == sum(os.path.getsize(f.removeprefix("file://"))
                                               for f in before_files)

    table = lake.load_table("db.compact")
    after_files, after_deletes = plan(table)
    assert len(after_files) == 3 and after_deletes == 0
    assert table.current_snapshot().summary["operation"].value == "replace"
    assert ids(osprey, lake, "compact") == expected
    # The snapshot before is still readable: nothing was deleted yet.
    parent = table.current_snapshot().parent_snapshot_id
    assert len(table.scan(snapshot_id=parent).to_arrow()) == len(expected)

    # Nothing left to do: one file per partition, no deletes.
    again = run(osprey, "ALTER TABLE mt.db.compact EXECUTE optimize").to_pylist()[0]
    assert again["rewritten_data_files_count"] == 0
    assert lake.load_table("db.compact").current_snapshot().snapshot_id == \
        table.current_snapshot().snapshot_id


def test_optimize_with_a_tiny_threshold_rewrites_only_files_with_deletes(osprey, lake):
    small_files_table(osprey, "folding", inserts=2)
    run(osprey, "DELETE FROM mt.db.folding WHERE id = 4")
    row = run(osprey, "ALTER TABLE mt.db.folding EXECUTE optimize(file_size_threshold => '1B')"
              ).to_pylist()[0]
    assert row["rewritten_data_files_count"] == 1 and row["added_data_files_count"] == 1
    files, deletes = plan(lake.load_table("db.folding"))
    assert len(files) == 6 and deletes == 0
    assert ids(osprey, lake, "folding") == [i for i in range(60) if i != 4]


def test_expire_snapshots_deletes_what_only_old_snapshots_needed(osprey, lake):
    small_files_table(osprey, "expiring", inserts=3)
    run(osprey, "DELETE FROM mt.db.expiring WHERE id < 5")
    run(osprey, "ALTER TABLE mt.db.expiring EXECUTE optimize")
    table = lake.load_table("db.expiring")
    old_files = set()
    for snapshot in table.snapshots():
        for task in table.scan(snapshot_id=snapshot.snapshot_id).plan_files():
            old_files.add(task.file.file_path.removeprefix("file://"))
            old_files.update(d.file_path.removeprefix("file://") for d in task.delete_files)
    current_files = {f.removeprefix("file://") for f in plan(table)[0]}
    snapshots = len(table.snapshots())
    assert snapshots == 5

    # The default keeps a week: nothing is that old.
    assert run(osprey, "ALTER TABLE mt.db.expiring EXECUTE expire_snapshots"
               ).to_pylist()[0]["expired_snapshots_count"] == 0
    row = run(osprey, "ALTER TABLE mt.db.expiring EXECUTE "
                      "expire_snapshots(retention_threshold => '0s')").to_pylist()[0]
    assert row["expired_snapshots_count"] == snapshots - 1
    gone = old_files - current_files
    assert row["deleted_data_files_count"] + row["deleted_delete_files_count"] == len(gone)
    assert row["deleted_manifest_lists_count"] == snapshots - 1
    assert not any(os.path.exists(path) for path in gone)
    assert all(os.path.exists(path) for path in current_files)
    table = lake.load_table("db.expiring")
    assert len(table.snapshots()) == 1
    assert ids(osprey, lake, "expiring") == list(range(5, 90))


def test_remove_orphan_files_deletes_only_old_unnamed_files(osprey, lake):
    small_files_table(osprey, "orphans", inserts=2)
    data = pathlib.Path(table_dir(lake.load_table("db.orphans"))) / "data"
    old, young = data / "left-behind.parquet", data / "in-flight.parquet"
    for stray in (old, young):
        stray.write_bytes(b"not referenced")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))

    row = run(osprey, "ALTER TABLE mt.db.orphans EXECUTE "
                      "remove_orphan_files(retention_threshold => '1d')").to_pylist()[0]
    assert row["deleted_files_count"] == 1
    assert row["scanned_files_count"] >= 8
    assert not old.exists() and young.exists()
    assert ids(osprey, lake, "orphans") == list(range(60))


def test_rewrite_manifests_merges_them(osprey, lake):
    small_files_table(osprey, "manifests", inserts=4)
    table = lake.load_table("db.manifests")
    assert len(table.current_snapshot().manifests(table.io)) == 4
    row = run(osprey, "ALTER TABLE mt.db.manifests EXECUTE rewrite_manifests").to_pylist()[0]
    assert row == {"rewritten_manifests_count": 4, "added_manifests_count": 1}
    table = lake.load_table("db.manifests")
    manifests = table.current_snapshot().manifests(table.io)
    assert len(manifests) == 1 and manifests[0].existing_files_count == 12
    assert ids(osprey, lake, "manifests") == list(range(120))
    # Pruning still works on the merged manifest's partition summary.
    assert column(run(osprey, "SELECT count(*) AS n FROM mt.db.manifests WHERE part = 'p1'"),
                  "n") == [40]


def test_bad_procedures_are_refused(osprey, lake):
    run(osprey, "CREATE TABLE mt.db.plain (id BIGINT)")
    assert "optimize, expire_snapshots" in error_of(osprey, "ALTER TABLE mt.db.plain EXECUTE vacuum")
    assert "it takes retention_threshold" in error_of(
        osprey, "ALTER TABLE mt.db.plain EXECUTE expire_snapshots(file_size_threshold => '1MB')")
    assert "does not exist" in error_of(osprey, "ALTER TABLE mt.db.nope EXECUTE optimize")
    run(osprey, "CREATE SCHEMA IF NOT EXISTS own")
    run(osprey, "CREATE TABLE own.legacy (id BIGINT) WITH (table_type = 'PARQUET')")
    assert "run on Iceberg tables" in error_of(osprey, "ALTER TABLE own.legacy EXECUTE optimize")
