"""Branches and tags of Iceberg tables in attached catalogs: created, replaced and dropped in
Spark's spelling, written to as `t.branch_<name>` (write-audit-publish: write to a branch,
check it, fast-forward `main`). pyiceberg (the independent reader) checks every ref and reads
every branch."""

import pytest

from conftest import attached_sql_catalog, column, connect, error_of, run


@pytest.fixture(scope="module")
def lake(osprey, tmp_path_factory):
    """A pyiceberg SqlCatalog `refs` on SQLite, attached to Osprey as `br`."""
    root = tmp_path_factory.mktemp("iceberg-branches")
    with attached_sql_catalog(osprey, root, "refs", "br") as catalog:
        yield catalog


def ids(osprey, sql):
    return column(run(osprey, sql), "id")


def pyiceberg_ids(lake, name, ref="main"):
    table = lake.load_table(f"db.{name}")
    snapshot = table.refs()[ref].snapshot_id if ref != "main" else table.current_snapshot().snapshot_id
    return sorted(column(table.scan(snapshot_id=snapshot).to_arrow(), "id"))


def test_write_audit_publish(osprey, lake):
    run(osprey, "CREATE TABLE br.db.wap (id BIGINT, status VARCHAR)")
    run(osprey, "INSERT INTO br.db.wap VALUES (1, 'old'), (2, 'old')")
    first = lake.load_table("db.wap").current_snapshot().snapshot_id

    run(osprey, "ALTER TABLE br.db.wap CREATE BRANCH audit")
    refs = lake.load_table("db.wap").refs()
    assert refs["audit"].snapshot_id == first and refs["audit"].snapshot_ref_type.value == "branch"
    assert "already" in error_of(osprey, "ALTER TABLE br.db.wap CREATE BRANCH audit")
    run(osprey, "ALTER TABLE br.db.wap CREATE BRANCH IF NOT EXISTS audit")

    # Writes to the branch leave main alone.
    run(osprey, "INSERT INTO br.db.wap.branch_audit VALUES (3, 'new'), (4, 'new')")
    run(osprey, "DELETE FROM br.db.wap.branch_audit WHERE id = 1")
    run(osprey, "UPDATE br.db.wap.branch_audit SET status = 'fixed' WHERE id = 2")
    assert ids(osprey, "SELECT id FROM br.db.wap ORDER BY id") == [1, 2]
    assert pyiceberg_ids(lake, "wap") == [1, 2]
    assert ids(osprey, "SELECT id FROM br.db.wap.branch_audit ORDER BY id") == [2, 3, 4]
    assert ids(osprey, "SELECT id FROM br.db.wap FOR VERSION AS OF 'audit' ORDER BY id") == [2, 3, 4]
    assert pyiceberg_ids(lake, "wap", "audit") == [2, 3, 4]
    assert lake.load_table("db.wap").current_snapshot().snapshot_id == first

    # Audit, then publish: main moves to the branch's head.
    result = run(osprey, "ALTER TABLE br.db.wap EXECUTE fast_forward('main', 'audit')").to_pylist()
    audit_head = lake.load_table("db.wap").refs()["audit"].snapshot_id
    assert result == [{"previous_ref": first, "updated_ref": audit_head}]
    assert lake.load_table("db.wap").current_snapshot().snapshot_id == audit_head
    assert pyiceberg_ids(lake, "wap") == [2, 3, 4]
    assert run(osprey, "SELECT status FROM br.db.wap WHERE id = 2").to_pylist() == [
        {"status": "fixed"}]

    # Once main has moved on its own, the branch cannot be fast-forwarded onto it.
    run(osprey, "INSERT INTO br.db.wap VALUES (5, 'main')")
    run(osprey, "INSERT INTO br.db.wap.branch_audit VALUES (6, 'branch')")
    assert "diverged" in error_of(osprey, "ALTER TABLE br.db.wap EXECUTE fast_forward('main', 'audit')")
    assert pyiceberg_ids(lake, "wap") == [2, 3, 4, 5]

    # A branch that does not exist is named as missing; main cannot be dropped.
    assert 'no branch or tag "nope"' in error_of(
        osprey, "INSERT INTO br.db.wap.branch_nope VALUES (9, 'x')")
    assert "cannot be dropped" in error_of(osprey, "ALTER TABLE br.db.wap DROP BRANCH main")
    run(osprey, "ALTER TABLE br.db.wap DROP BRANCH audit")
    assert "audit" not in lake.load_table("db.wap").refs()
    assert "no branch audit" in error_of(osprey, "ALTER TABLE br.db.wap DROP BRANCH audit")
    run(osprey, "ALTER TABLE br.db.wap DROP BRANCH IF EXISTS audit")


def test_tags_pin_snapshots(osprey, lake):
    run(osprey, "CREATE TABLE br.db.tagged (id BIGINT)")
    run(osprey, "INSERT INTO br.db.tagged VALUES (1)")
    first = lake.load_table("db.tagged").current_snapshot().snapshot_id
    run(osprey, "INSERT INTO br.db.tagged VALUES (2)")
    second = lake.load_table("db.tagged").current_snapshot().snapshot_id

    run(osprey, f"ALTER TABLE br.db.tagged CREATE TAG v1 AS OF VERSION {first} RETAIN 7 DAYS")
    tag = lake.load_table("db.tagged").refs()["v1"]
    assert tag.snapshot_id == first and tag.snapshot_ref_type.value == "tag"
    assert tag.max_ref_age_ms == 7 * 86_400_000
    assert ids(osprey, "SELECT id FROM br.db.tagged FOR VERSION AS OF 'v1'") == [1]
    assert "v1 is a tag" in error_of(osprey, "ALTER TABLE br.db.tagged DROP BRANCH v1")
    assert "has no snapshot 42" in error_of(osprey, "ALTER TABLE br.db.tagged CREATE TAG v2 AS OF VERSION 42")

    run(osprey, "ALTER TABLE br.db.tagged REPLACE TAG v1")
    assert lake.load_table("db.tagged").refs()["v1"].snapshot_id == second

    # Expiry keeps what a tag points at.
    run(osprey, f"ALTER TABLE br.db.tagged CREATE OR REPLACE TAG v1 AS OF VERSION {first}")
    run(osprey, "INSERT INTO br.db.tagged VALUES (3)")
    expired = run(osprey, "ALTER TABLE br.db.tagged EXECUTE "
                          "expire_snapshots(retention_threshold => '0s')").to_pylist()[0]
    assert expired["expired_snapshots_count"] == 1  # the second snapshot: neither current nor tagged
    assert ids(osprey, "SELECT id FROM br.db.tagged FOR VERSION AS OF 'v1'") == [1]
    assert pyiceberg_ids(lake, "tagged", "v1") == [1]
    run(osprey, "ALTER TABLE br.db.tagged DROP TAG v1")
    assert "v1" not in lake.load_table("db.tagged").refs()


def test_a_schema_named_like_a_branch_is_still_a_schema(osprey, lake):
    """`sales.branch_x` in a catalog with a schema `sales` is the table `branch_x`."""
    run(osprey, "CREATE SCHEMA br.sales")
    run(osprey, "CREATE TABLE br.sales.branch_x (id BIGINT)")
    run(osprey, "INSERT INTO br.sales.branch_x VALUES (7)")
    assert ids(osprey, "SELECT id FROM br.sales.branch_x") == [7]
    with connect(osprey) as conn, conn.cursor() as cur:
        cur.execute("USE br.db")
        cur.fetchall()
        cur.execute("INSERT INTO sales.branch_x VALUES (8)")
        cur.fetchall()
        cur.execute("SELECT id FROM sales.branch_x ORDER BY id")
        assert [row[0] for row in cur.fetchall()] == [7, 8]
