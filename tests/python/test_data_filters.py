"""Governance (issue 24): row filters, column masks and views that run with their owner's
rights. A policy corpus: several users, each with other roles, run the same queries, and what
each sees is checked against the same queries run by an admin with that user's filters and
masks written by hand. Then the ways around a filter (errors, statistics, EXPLAIN ANALYZE,
metadata tables, writes, views, time travel, CTAS) must fail or show only permitted rows, through
ADBC (Flight SQL), the HTTP API and the trino client alike."""

import adbc_driver_manager
import pytest

from conftest import PASSWORD
from hostile import (  # noqa: F401 (server is a fixture)
    adbc_run, http_query, server, trino_run)

PEOPLE = [
    # id, name, region, ssn, salary
    (1, "df_ana", "eu", "111-11-1111", 4200),
    (2, "df_bob", "us", "222-22-2222", 9100),
    (3, "df_cy", "eu", "333-33-3333", 5500),
    (4, "df_dan", "apac", "444-44-4444", 7300),
    (5, "df_eve", "us", "555-55-5555", 3100),
    (6, "zoe", "eu", "666-66-6666", 12000),
    (7, "yan", "apac", "777-77-7777", 2500),
    (8, "xia", "us", "888-88-8888", 6400),
]

# Who holds what (all hold SELECT on df.people through their roles):
#   analysts: rows of region 'eu', ssn masked;
#   auditors: rows with salary > 5000 (the stored salary), salary rounded down to thousands;
#   selfies:  each user's own row (current_user), nothing masked;
#   managers: every row, nothing masked.
USERS = {
    "df_ana": ["analysts"],
    "df_bob": ["managers"],
    "df_cy": ["analysts", "auditors"],
    "df_dan": ["auditors"],
    "df_eve": ["selfies"],
}
USER_PASSWORD = "df-user-password-1"
SSN_MASK = "'***-' || substr(ssn, 8)"
SALARY_MASK = "CAST(salary / 1000 * 1000 AS INT)"

# Each user's table, written by hand: the union of the rows its roles give, a column masked
# only where every role that gives it masks it.
BY_HAND = {
    "df_ana": f"SELECT id, name, region, {SSN_MASK} AS ssn, salary FROM df.people "
              "WHERE region = 'eu'",
    "df_bob": "SELECT id, name, region, ssn, salary FROM df.people",
    "df_cy": "SELECT id, name, region, ssn, salary FROM df.people "
             "WHERE region = 'eu' OR salary > 5000",
    "df_dan": f"SELECT id, name, region, ssn, {SALARY_MASK} AS salary FROM df.people "
              "WHERE salary > 5000",
    "df_eve": "SELECT id, name, region, ssn, salary FROM df.people WHERE name = 'df_eve'",
}

# The corpus: each query, run by each user, against the table as the user sees it.
CORPUS = [
    "SELECT id, name, region, ssn, salary FROM df.people ORDER BY id",
    "SELECT * FROM df.people WHERE salary > 3000 ORDER BY id",
    "SELECT region, count(*), sum(salary) FROM df.people GROUP BY region ORDER BY region",
    "SELECT count(*) FROM df.people",
    "SELECT min(ssn), max(ssn), min(salary), max(salary) FROM df.people",
    "WITH p AS (SELECT * FROM df.people) SELECT a.id, b.ssn FROM p a JOIN df.people b "
    "ON a.id = b.id ORDER BY a.id",
    "SELECT id, (SELECT max(salary) FROM df.people) AS top FROM df.people ORDER BY id",
    "SELECT id FROM df.people UNION SELECT id + 100 FROM df.people ORDER BY 1",
    "SELECT id, rank() OVER (ORDER BY salary DESC) FROM df.people ORDER BY id",
    "SELECT id FROM df.people WHERE ssn = '222-22-2222' OR ssn LIKE '%-1111' ORDER BY id",
    # Joins and a TopK, whose runtime filters reach the table's scan over unmasked columns
    # only: a join on a masked column matches the masked value, never the stored one.
    "SELECT p.id FROM df.people p JOIN (SELECT '***-1111' AS s UNION ALL SELECT '111-11-1111') "
    "k ON p.ssn = k.s ORDER BY 1",
    "SELECT p.name FROM df.people p JOIN (SELECT 3 AS id UNION ALL SELECT 7) k ON p.id = k.id "
    "ORDER BY 1",
    "SELECT id, salary FROM df.people ORDER BY salary DESC, id LIMIT 3",
]


def admin(server, sql):
    return adbc_run(server, sql, "admin", PASSWORD)


def run_as(server, user, sql):
    return adbc_run(server, sql, user, USER_PASSWORD)


def refused(server, user, sql):
    with pytest.raises(adbc_driver_manager.Error) as failed:
        run_as(server, user, sql)
    message = str(failed.value)
    assert "PermissionDenied" in message or "PERMISSION_DENIED" in message, (sql, message)
    return message


def by_hand(user, sql):
    """SQL with df.people replaced by the user's table written by hand."""
    return sql.replace("df.people", f"({BY_HAND[user]})")


@pytest.fixture(scope="module")
def filtered(server):
    values = ", ".join(f"({i}, '{n}', '{r}', '{s}', {p})" for i, n, r, s, p in PEOPLE)
    statements = [
        "CREATE SCHEMA df",
        "CREATE TABLE df.people AS SELECT * FROM (VALUES "
        f"{values}) AS t (id, name, region, ssn, salary)",
        "CREATE SCHEMA df_ana_s",
    ]
    for role in ["analysts", "auditors", "selfies", "managers"]:
        statements += [f"CREATE ROLE df_{role}", f"GRANT SELECT ON df.people TO ROLE df_{role}"]
    for user, roles in USERS.items():
        statements.append(f"CREATE USER {user} PASSWORD '{USER_PASSWORD}'")
        statements += [f"GRANT df_{role} TO USER {user}" for role in roles]
    statements += [
        "CREATE ROW FILTER eu_only ON df.people FOR ROLE df_analysts USING (region = 'eu')",
        f"CREATE COLUMN MASK ssn_tail ON df.people (ssn) FOR ROLE df_analysts USING ({SSN_MASK})",
        "CREATE ROW FILTER well_paid ON df.people FOR ROLE df_auditors USING (salary > 5000)",
        "CREATE COLUMN MASK salary_band ON df.people (salary) FOR ROLE df_auditors "
        f"USING ({SALARY_MASK})",
        "CREATE ROW FILTER own_row ON df.people FOR ROLE df_selfies "
        "USING (name = current_user AND is_role_in_session('df_selfies'))",
        "GRANT CREATE ON SCHEMA df_ana_s TO df_ana",
        "GRANT DELETE, INSERT ON df.people TO ROLE df_analysts",
    ]
    for sql in statements:
        admin(server, sql)
    return server


def test_each_user_sees_its_rows_and_values_from_the_same_queries(filtered):
    server = filtered
    for user in USERS:
        for sql in CORPUS:
            expected = admin(server, by_hand(user, sql))
            assert run_as(server, user, sql) == expected, (user, sql)
    # A few answers spelt out, so the corpus cannot agree with itself by accident.
    assert run_as(server, "df_ana", CORPUS[0]) == [
        (1, "df_ana", "eu", "***-1111", 4200), (3, "df_cy", "eu", "***-3333", 5500),
        (6, "zoe", "eu", "***-6666", 12000)]
    # The filter compares the stored salary (5500 > 5000); the mask shows 5000.
    assert (3, "df_cy", "eu", "333-33-3333", 5000) in run_as(server, "df_dan", CORPUS[0])
    assert run_as(server, "df_eve", "SELECT name FROM df.people") == [("df_eve",)]
    assert run_as(server, "df_bob", "SELECT count(*) FROM df.people") == [(len(PEOPLE),)]
    # cy holds two roles: the union of their rows, and ssn in clear, which auditors give.
    assert len(run_as(server, "df_cy", CORPUS[0])) == 6


def test_set_role_chooses_whose_filters_apply(filtered):
    server = filtered
    from hostile import adbc
    with adbc(server, "df_cy", USER_PASSWORD) as conn, conn.cursor() as cur:
        cur.execute("SET ROLE df_analysts")
        cur.fetchall()
        cur.execute(CORPUS[0])
        assert cur.fetchall() == admin(server, by_hand("df_ana", CORPUS[0]))
        cur.execute("SET ROLE df_auditors")
        cur.fetchall()
        cur.execute(CORPUS[0])
        assert cur.fetchall() == admin(server, by_hand("df_dan", CORPUS[0]))


def test_every_door_applies_them(filtered):
    server = filtered
    sql = "SELECT id, ssn FROM df.people ORDER BY id"
    expected = [list(row) for row in admin(server, by_hand("df_ana", sql))]
    answer = http_query(server, sql, "df_ana", USER_PASSWORD)
    assert answer["result"]["rows"] == expected, answer
    assert trino_run(server, sql, user="df_ana", password=USER_PASSWORD) == expected


def test_ways_around_a_filter_fail_or_show_only_permitted_rows(filtered):
    server = filtered
    hidden = {"us", "apac"}
    # A predicate that fails on a hidden row never sees one: no division by zero, and a failed
    # cast names only a value ana may see.
    assert run_as(server, "df_ana",
                  "SELECT id FROM df.people WHERE 1 / (CASE WHEN region = 'us' THEN 0 ELSE 1 "
                  "END) = 1 ORDER BY id") == [(1,), (3,), (6,)]
    with pytest.raises(adbc_driver_manager.Error) as failed:
        run_as(server, "df_ana", "SELECT id FROM df.people WHERE CAST(region AS INT) = 1")
    assert not any(f"'{value}'" in str(failed.value) for value in hidden), str(failed.value)
    with pytest.raises(adbc_driver_manager.Error) as failed:
        run_as(server, "df_ana", "SELECT id FROM df.people WHERE CAST(ssn AS INT) = 1")
    assert "222-22" not in str(failed.value) and "111-11" not in str(failed.value)
    # Statistics answer nothing the filter hides; EXPLAIN ANALYZE would count it: refused.
    assert run_as(server, "df_ana", "SELECT count(*), max(id) FROM df.people") == [(3, 6)]
    assert "EXPLAIN ANALYZE" in refused(server, "df_ana",
                                        "EXPLAIN ANALYZE SELECT * FROM df.people")
    plan = run_as(server, "df_ana", "EXPLAIN SELECT * FROM df.people")
    assert "PolicyBoundaryExec" in str(plan)
    # The optimizer's estimates count every row: users cannot show them in EXPLAIN.
    assert "statistics" in refused(server, "df_ana",
                                   "SET datafusion.explain.show_statistics = true")
    # Metadata tables describe every file: refused under a filter.
    refused(server, "df_ana", 'SELECT * FROM df."people$files"')
    # Changes other than appends would touch hidden rows: refused though ana holds DELETE.
    assert "only INSERT" in refused(server, "df_ana", "DELETE FROM df.people WHERE id = 2")
    # Time travel reads the same filtered table.
    snapshot = admin(server, 'SELECT snapshot_id FROM df."people$snapshots" '
                             "ORDER BY committed_at LIMIT 1")[0][0]
    assert run_as(server, "df_ana",
                  f"SELECT id FROM df.people FOR VERSION AS OF {snapshot} ORDER BY id") == [
        (1,), (3,), (6,)]
    # What ana copies or views is what she sees.
    run_as(server, "df_ana", "CREATE TABLE df_ana_s.copy AS SELECT * FROM df.people")
    assert run_as(server, "df_ana", "SELECT id, ssn FROM df_ana_s.copy ORDER BY id") == [
        (1, "***-1111"), (3, "***-3333"), (6, "***-6666")]
    run_as(server, "df_ana", "CREATE TABLE df_ana_s.log (id BIGINT, ssn VARCHAR)")
    run_as(server, "df_ana", "INSERT INTO df_ana_s.log SELECT id, ssn FROM df.people")
    assert run_as(server, "df_ana", "SELECT count(*) FROM df_ana_s.log WHERE ssn LIKE '***%'") \
        == [(3,)]
    run_as(server, "df_ana", "CREATE VIEW df_ana_s.everyone AS SELECT * FROM df.people")
    assert run_as(server, "df_ana", "SELECT count(*) FROM df_ana_s.everyone") == [(3,)]
    # Appends are allowed: they change no row ana cannot see.
    run_as(server, "df_ana", "INSERT INTO df.people VALUES (9, 'new', 'us', '999-99-9999', 1)")
    assert admin(server, "SELECT count(*) FROM df.people WHERE id = 9") == [(1,)]
    admin(server, "DELETE FROM df.people WHERE id = 9")


def test_views_run_with_their_owners_rights(filtered):
    """A SECURITY DEFINER view (the default) shows its readers what its owner lets it show; a
    SECURITY INVOKER view applies its reader's rights; a view's text is its owner's to see."""
    server = filtered
    admin(server, "CREATE VIEW df.us_names AS SELECT id, name FROM df.people WHERE region = 'us'")
    admin(server, "CREATE VIEW df.as_reader SECURITY INVOKER AS SELECT id, region FROM df.people")
    admin(server, "CREATE USER df_fay PASSWORD 'df-user-password-1'")
    admin(server, "GRANT SELECT ON df.us_names TO df_fay")
    admin(server, "GRANT SELECT ON df.as_reader TO df_fay")
    admin(server, "GRANT SELECT ON df.as_reader TO df_ana")
    # fay holds nothing on df.people: the definer view still answers, the invoker one not.
    assert run_as(server, "df_fay", "SELECT id FROM df.us_names ORDER BY id") == [
        (2,), (5,), (8,)]
    refused(server, "df_fay", "SELECT id FROM df.as_reader")
    refused(server, "df_fay", "SELECT id FROM df.people")
    # ana reads through the invoker view under her own filter.
    assert run_as(server, "df_ana", "SELECT id FROM df.as_reader ORDER BY id") == [
        (1,), (3,), (6,)]
    # The view's text names what it reads: fay does not see it, the owner does.
    shown = run_as(server, "df_fay", "SHOW CREATE TABLE df.us_names")
    assert shown and all(row[-1] is None for row in shown), shown
    assert "region = 'us'" in str(admin(server, "SHOW CREATE TABLE df.us_names"))
    assert "SECURITY INVOKER" in str(admin(server, "SHOW CREATE TABLE df.as_reader"))
    views = run_as(server, "df_fay",
                   "SELECT view_definition FROM information_schema.views "
                   "WHERE table_name = 'us_names'")
    assert all(row[0] is None for row in views), views
    # A view of a user who loses the right to read stops answering its readers.
    run_as(server, "df_ana", "CREATE VIEW df_ana_s.mine AS SELECT id FROM df.people")
    run_as(server, "df_ana", "GRANT SELECT ON df_ana_s.mine TO df_fay")
    assert len(run_as(server, "df_fay", "SELECT id FROM df_ana_s.mine")) == 3
    admin(server, "REVOKE df_analysts FROM USER df_ana")
    try:
        refused(server, "df_fay", "SELECT id FROM df_ana_s.mine")
    finally:
        admin(server, "GRANT df_analysts TO USER df_ana")


def test_filters_and_masks_are_the_owners_to_make(filtered):
    server = filtered
    assert "own it" in refused(
        server, "df_ana", "CREATE ROW FILTER mine ON df.people FOR PUBLIC USING (true)")
    assert "own it" in refused(server, "df_ana", "DROP ROW FILTER eu_only ON df.people")
    listed = admin(server, "SHOW ROW FILTERS ON df.people")
    assert {row[0] for row in listed} == {"eu_only", "well_paid", "own_row"}
    assert run_as(server, "df_ana", "SHOW COLUMN MASKS") == []
    # Definitions are checked when made: the column, the type, the role.
    with pytest.raises(adbc_driver_manager.Error, match="not BOOLEAN"):
        admin(server, "CREATE ROW FILTER bad ON df.people FOR ROLE df_analysts USING (salary)")
    with pytest.raises(adbc_driver_manager.Error, match="(?i)nope"):
        admin(server, "CREATE ROW FILTER bad ON df.people FOR ROLE df_analysts USING (nope = 1)")
    with pytest.raises(adbc_driver_manager.Error, match="does not exist"):
        admin(server, "CREATE ROW FILTER bad ON df.people FOR ROLE no_such USING (true)")
    with pytest.raises(adbc_driver_manager.Error, match="already has mask"):
        admin(server, "CREATE COLUMN MASK other ON df.people (ssn) FOR ROLE df_analysts "
                      "USING (NULL)")
    # Replaced, a filter holds from the next statement; dropped, the rows come back.
    admin(server, "CREATE OR REPLACE ROW FILTER eu_only ON df.people FOR ROLE df_analysts "
                  "USING (region = 'apac')")
    assert run_as(server, "df_ana", "SELECT id FROM df.people ORDER BY id") == [(4,), (7,)]
    admin(server, "DROP ROW FILTER eu_only ON df.people")
    assert len(run_as(server, "df_ana", "SELECT id FROM df.people")) == len(PEOPLE)
    admin(server, "CREATE ROW FILTER eu_only ON df.people FOR ROLE df_analysts "
                  "USING (region = 'eu')")


def test_every_decision_is_audited_before_its_statement_runs(filtered):
    """Allowed and denied decisions go to system.audit (admins only) with the statement's id,
    the roles, the privileges needed and the filters and masks applied; a statement whose
    record cannot be written does not run."""
    server = filtered
    answer = http_query(server, "SELECT id, ssn FROM df.people", "df_ana", USER_PASSWORD)
    assert answer["state"] == "SUCCEEDED", answer
    rows = admin(server, "SELECT user_name, roles, decision, objects, filters, masks "
                         f"FROM system.audit WHERE statement_id = '{answer['query_id']}'")
    assert rows == [("df_ana", ["df_analysts", "public"], "ALLOWED",
                     ["SELECT (id, ssn) on table osprey.df.people"],
                     ["eu_only on table osprey.df.people"],
                     ["ssn_tail on table osprey.df.people (ssn)"])], rows
    # Denials: a missing privilege, and a table hidden from the user (the audit trail itself).
    answer = http_query(server, "DROP TABLE df.people", "df_ana", USER_PASSWORD)
    assert answer["error"]["code"] == "PERMISSION_DENIED", answer
    rows = admin(server, "SELECT decision, objects, message FROM system.audit "
                         f"WHERE statement_id = '{answer['query_id']}'")
    assert rows == [("DENIED", ["DROP: owner of table osprey.df.people"],
                     answer["error"]["message"])], rows
    refused(server, "df_ana", "SELECT * FROM system.audit")
    denied = admin(server, "SELECT objects FROM system.audit WHERE user_name = 'df_ana' "
                           "AND decision = 'DENIED' ORDER BY at DESC LIMIT 1")
    assert denied == [(["any privilege on table osprey.system.audit"],)], denied

    # The catalog database refuses audit records (a trigger stands for a full disk): a
    # statement that reads a table does not run, one that reads none still does.
    import sqlite3
    catalog = sqlite3.connect(server["data_dir"] / "catalog.db")
    catalog.execute("CREATE TRIGGER audit_full BEFORE INSERT ON osprey_audit "
                    "BEGIN SELECT RAISE(FAIL, 'disk full'); END")
    catalog.commit()
    try:
        with pytest.raises(adbc_driver_manager.Error, match="audit record"):
            run_as(server, "df_bob", "SELECT count(*) FROM df.people")
        assert run_as(server, "df_bob", "SELECT 1") == [(1,)]
    finally:
        catalog.execute("DROP TRIGGER audit_full")
        catalog.commit()
        catalog.close()
    assert run_as(server, "df_bob", "SELECT count(*) FROM df.people") == [(len(PEOPLE),)]


def test_locations_are_granted_to_roles(filtered):
    """GRANT USAGE ON LOCATION: only admins and holders create external tables over a
    location; local paths outside every location stay refused."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    server = filtered
    lake = server["root"] / "lake"
    lake.mkdir()
    pq.write_table(pa.table({"k": [1, 2, 3]}), lake / "part-0.parquet")
    admin(server, f"CREATE LOCATION df_lake URL '{lake}/'")
    external = f"CREATE EXTERNAL TABLE df_ana_s.ext STORED AS PARQUET LOCATION '{lake}/'"
    assert "not under a location granted" in refused(server, "df_ana", external)
    admin(server, "GRANT USAGE ON LOCATION df_lake TO ROLE df_analysts")
    run_as(server, "df_ana", external)
    assert run_as(server, "df_ana", "SELECT sum(k) FROM df_ana_s.ext") == [(6,)]
    grants = admin(server, "SHOW GRANTS ON LOCATION df_lake")
    assert [(g[1], g[2], g[3], g[4]) for g in grants] == [
        ("df_analysts", "LOCATION", "df_lake", "USAGE")], grants
    # Revoked, then granted by URL; a privilege a location does not take is refused.
    admin(server, "REVOKE USAGE ON LOCATION df_lake FROM ROLE df_analysts")
    again = f"CREATE EXTERNAL TABLE df_ana_s.ext2 STORED AS PARQUET LOCATION '{lake}/'"
    refused(server, "df_ana", again)
    admin(server, f"GRANT USAGE ON LOCATION '{lake}/' TO ROLE df_analysts")
    run_as(server, "df_ana", again)
    with pytest.raises(adbc_driver_manager.Error, match="USAGE"):
        admin(server, "GRANT SELECT ON LOCATION df_lake TO df_ana")
    with pytest.raises(adbc_driver_manager.Error, match="does not exist"):
        admin(server, "GRANT USAGE ON LOCATION no_such TO df_ana")
    # Any other local path is still refused, and a dropped location's grants go with it.
    refused(server, "df_ana", "CREATE EXTERNAL TABLE df_ana_s.etc STORED AS CSV LOCATION '/etc/'")
    admin(server, "DROP LOCATION df_lake")
    assert not any(g[2] == "LOCATION" for g in admin(server, "SHOW GRANTS FOR df_analysts"))
