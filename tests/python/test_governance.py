"""Governance, first part (issue 24): roles, privileges and owners, enforced in the statement
service's one policy hook, so every front door gives the same answers. Users reach only what is
granted to them, through ADBC (Flight SQL), the HTTP API and the trino client, and every way
around a missing privilege this file tries is refused with PERMISSION_DENIED."""

import adbc_driver_manager
import pytest
import trino

from conftest import PASSWORD
from hostile import (  # noqa: F401 (server is a fixture)
    adbc, adbc_run, http_query, server, trino_run)

ANA, ANA_PASSWORD = "gov_ana", "gov-ana-password-1"
BEN, BEN_PASSWORD = "gov_ben", "gov-ben-password-1"


def admin(server, sql):
    return adbc_run(server, sql, "admin", PASSWORD)


def as_ben(server, sql):
    return adbc_run(server, sql, BEN, BEN_PASSWORD)


def refused(server, sql, user=BEN, password=BEN_PASSWORD):
    """The error message of SQL run as USER through ADBC, which must be PERMISSION_DENIED."""
    with pytest.raises(adbc_driver_manager.Error) as failed:
        adbc_run(server, sql, user, password)
    message = str(failed.value)
    assert "PermissionDenied" in message or "PERMISSION_DENIED" in message, (sql, message)
    return message


@pytest.fixture(scope="module")
def governed(server):
    """A schema `gov` with `orders (id, region, ssn)` and `secret (x)`, both Iceberg tables of
    Osprey's own; ana holds the role analysts (SELECT on orders), ben SELECT (id, region) on
    orders and CREATE on his own schema `ben_s`."""
    for sql in [
        f"CREATE USER {ANA} PASSWORD '{ANA_PASSWORD}'",
        f"CREATE USER {BEN} PASSWORD '{BEN_PASSWORD}'",
        "CREATE SCHEMA gov",
        "CREATE TABLE gov.orders AS SELECT * FROM (VALUES (1, 'eu', '111-11-1111'), "
        "(2, 'us', '222-22-2222')) AS t (id, region, ssn)",
        "CREATE TABLE gov.secret AS SELECT 42 AS x",
        "CREATE ROLE analysts",
        f"GRANT analysts TO USER {ANA}",
        "GRANT SELECT ON gov.orders TO ROLE analysts",
        f"GRANT SELECT (id, region) ON gov.orders TO {BEN}",
        "CREATE SCHEMA ben_s",
        f"GRANT CREATE ON SCHEMA ben_s TO {BEN}",
    ]:
        admin(server, sql)
    return server


def test_every_door_gives_what_is_granted_and_refuses_the_rest(governed):
    server = governed
    # ADBC: the granted columns, count(*), and a refusal naming privilege and columns.
    assert sorted(as_ben(server, "SELECT id, region FROM gov.orders")) == [(1, "eu"), (2, "us")]
    assert as_ben(server, "SELECT count(*) FROM gov.orders") == [(2,)]
    message = refused(server, "SELECT * FROM gov.orders")
    assert "SELECT (id, region, ssn) on table osprey.gov.orders" in message
    # A table not granted at all, and one that does not exist, fail alike.
    hidden = refused(server, "SELECT x FROM gov.secret")
    missing = refused(server, "SELECT x FROM gov.no_such_table")
    assert "no privilege on table osprey.gov.secret" in hidden
    assert "no privilege on table osprey.gov.no_such_table" in missing
    # A misspelt name gets "did you mean" from the names the user sees, never a hidden one.
    assert "no privilege on table osprey.gov.order. Did you mean gov.orders?" in refused(
        server, "SELECT id FROM gov.order")
    slip = refused(server, "SELECT x FROM gov.secre")
    assert "secret" not in slip, slip
    with pytest.raises(adbc_driver_manager.Error) as failed:
        admin(server, "SELECT x FROM gov.secre")
    assert "Did you mean gov.secret?" in str(failed.value)

    # HTTP: the same error, code and all.
    answer = http_query(server, "SELECT ssn FROM gov.orders", BEN, BEN_PASSWORD)
    assert answer["error"]["code"] == "PERMISSION_DENIED", answer
    assert "SELECT (ssn)" in answer["error"]["message"]
    answer = http_query(server, "SELECT id FROM gov.orders ORDER BY id", BEN, BEN_PASSWORD)
    assert answer.get("error") is None and answer["result"]["rows"] == [[1], [2]], answer

    # Trino: its error name.
    with pytest.raises(trino.exceptions.TrinoUserError) as failed:
        trino_run(server, "SELECT x FROM gov.secret", user=BEN, password=BEN_PASSWORD)
    assert failed.value.error_name == "PERMISSION_DENIED"
    assert trino_run(server, "SELECT region FROM gov.orders WHERE id = 1",
                     user=BEN, password=BEN_PASSWORD) == [["eu"]]

    # Listings show only what is granted, on every door.
    assert as_ben(server, "SHOW TABLES FROM gov") == [("orders",)]
    tables = as_ben(server, "SELECT table_schema, table_name FROM information_schema.tables "
                            "WHERE table_schema IN ('gov', 'ben_s')")
    assert tables == [("gov", "orders")]
    with adbc(server, BEN, BEN_PASSWORD) as conn:
        objects = conn.adbc_get_objects(depth="tables", catalog_filter="osprey").read_all()
    listed = {(schema["db_schema_name"], table["table_name"])
              for catalog in objects.to_pylist()
              for schema in catalog["catalog_db_schemas"] or []
              for table in schema["db_schema_tables"] or []}
    assert ("gov", "orders") in listed and ("gov", "secret") not in listed
    schemas = {row[0] for row in trino_run(server, "SHOW SCHEMAS", user=BEN,
                                           password=BEN_PASSWORD)}
    # (this server has no TPC-H data); the default schema holds nothing of ben's.
    assert {"gov", "ben_s"} <= schemas and "public" not in schemas, schemas


BYPASSES = [
    # Columns not granted, however they are reached.
    "WITH c AS (SELECT ssn FROM gov.orders) SELECT * FROM c",
    "SELECT id, (SELECT max(ssn) FROM gov.orders) FROM gov.orders",
    "SELECT a.id FROM gov.orders a JOIN gov.orders b ON a.ssn = b.ssn",
    "SELECT id FROM gov.orders UNION ALL SELECT x FROM gov.secret",
    "SELECT id, row_number() OVER (ORDER BY ssn) FROM gov.orders",
    "SELECT id FROM gov.orders WHERE ssn LIKE '111%'",
    "SELECT id FROM gov.orders WHERE id IN (SELECT id FROM gov.orders WHERE ssn = '1')",
    "SELECT min(ssn), max(ssn) FROM gov.orders",
    "SELECT CAST(ssn AS INT) FROM gov.orders",
    "EXPLAIN SELECT ssn FROM gov.orders",
    "EXPLAIN ANALYZE SELECT ssn FROM gov.orders",
    # Statistics of a table not granted.
    "SELECT count(*) FROM gov.secret",
    "SELECT * FROM \"gov\".\"secret$snapshots\"",
    "SELECT * FROM gov.secret FOR TIMESTAMP AS OF TIMESTAMP '2099-01-01 00:00:00'",
    # Copies into what ben owns.
    "CREATE TABLE ben_s.copy AS SELECT ssn FROM gov.orders",
    "CREATE VIEW ben_s.v AS SELECT ssn FROM gov.orders",
    "INSERT INTO ben_s.mine SELECT x FROM gov.secret",
    # Changes without the privilege.
    "INSERT INTO gov.orders VALUES (3, 'eu', 'x')",
    "DELETE FROM gov.orders WHERE id = 1",
    "UPDATE gov.orders SET region = 'x'",
    "DROP TABLE gov.orders",
    "ALTER TABLE gov.orders ADD COLUMN extra INT",
    "ALTER TABLE gov.orders EXECUTE expire_snapshots(retention_threshold => '7d')",
    "CREATE TABLE gov.mine (a INT)",
    "CREATE SCHEMA bens_other",
    "DROP SCHEMA gov CASCADE",
    "GRANT SELECT ON gov.orders TO gov_ana",
]


def test_bypass_attempts_are_refused(governed):
    server = governed
    as_ben(server, "CREATE TABLE ben_s.mine (x INT)")
    for sql in BYPASSES:
        refused(server, sql)
    # Nothing leaked into ben's schema, and the tables are as they were.
    assert as_ben(server, "SHOW TABLES FROM ben_s") == [("mine",)]
    assert sorted(admin(server, "SELECT id FROM gov.orders")) == [(1,), (2,)]
    # What ben may do still works: he owns what he creates.
    as_ben(server, "INSERT INTO ben_s.mine SELECT id FROM gov.orders")
    assert sorted(as_ben(server, "SELECT x FROM ben_s.mine")) == [(1,), (2,)]
    as_ben(server, "DROP TABLE ben_s.mine")
    # system.queries shows ben his own statements only.
    users = {row[0] for row in as_ben(server, "SELECT user_name FROM system.queries")}
    assert users == {BEN}


def test_grants_and_roles_take_effect_at_the_next_statement(governed):
    server = governed
    with adbc(server, ANA, ANA_PASSWORD) as conn, conn.cursor() as cur:
        def run(sql):
            cur.execute(sql)
            return cur.fetchall()

        assert len(run("SELECT ssn FROM gov.orders")) == 2  # through the role analysts
        assert run("SHOW CURRENT ROLES") == [("analysts",), ("public",)]
        run("SET ROLE NONE")
        with pytest.raises(adbc_driver_manager.Error, match="(?i)permission denied"):
            run("SELECT ssn FROM gov.orders")
        run("SET ROLE analysts")
        assert len(run("SELECT ssn FROM gov.orders")) == 2
        # A grant, then a revoke, in another session: this one sees each at once.
        with pytest.raises(adbc_driver_manager.Error, match="(?i)permission denied"):
            run("SELECT x FROM gov.secret")
        admin(server, f"GRANT SELECT ON gov.secret TO {ANA}")
        assert run("SELECT x FROM gov.secret") == [(42,)]
        admin(server, "REVOKE SELECT ON gov.orders FROM ROLE analysts")
        with pytest.raises(adbc_driver_manager.Error, match="(?i)permission denied"):
            run("SELECT ssn FROM gov.orders")
        admin(server, "GRANT SELECT ON gov.orders TO ROLE analysts")
        assert len(run("SELECT ssn FROM gov.orders")) == 2
    grants = admin(server, f"SHOW GRANTS FOR {ANA}")
    assert [(g[2], g[3], g[4]) for g in grants] == [("TABLE", "osprey.gov.secret", "SELECT")]
    # A dropped user's grants go with it: a new user of the same name starts with none.
    admin(server, f"DROP USER {ANA}")
    assert admin(server, f"SHOW GRANTS FOR {ANA}") == []
    admin(server, f"CREATE USER {ANA} PASSWORD '{ANA_PASSWORD}'")
    refused(server, "SELECT x FROM gov.secret", ANA, ANA_PASSWORD)
    admin(server, f"GRANT analysts TO USER {ANA}")


def test_owners_grant_what_they_own(governed):
    server = governed
    as_ben(server, "CREATE TABLE ben_s.shared AS SELECT 7 AS n")
    refused(server, "SELECT n FROM ben_s.shared", ANA, ANA_PASSWORD)
    as_ben(server, f"GRANT SELECT ON ben_s.shared TO {ANA}")
    assert adbc_run(server, "SELECT n FROM ben_s.shared", ANA, ANA_PASSWORD) == [(7,)]
    # ana may read it, not drop it or pass it on.
    refused(server, "DROP TABLE ben_s.shared", ANA, ANA_PASSWORD)
    refused(server, f"GRANT SELECT ON ben_s.shared TO {BEN}", ANA, ANA_PASSWORD)
    # Renamed, the table keeps its grants; dropped, they go with it.
    as_ben(server, "ALTER TABLE ben_s.shared RENAME TO shared2")
    assert adbc_run(server, "SELECT n FROM ben_s.shared2", ANA, ANA_PASSWORD) == [(7,)]
    as_ben(server, "DROP TABLE ben_s.shared2")
    as_ben(server, "CREATE TABLE ben_s.shared2 AS SELECT 8 AS n")
    refused(server, "SELECT n FROM ben_s.shared2", ANA, ANA_PASSWORD)
    # CREATE in ben's schema does not make ana the owner of what is there: IF NOT EXISTS of
    # ben's table changes nothing, and replacing it needs its owner.
    admin(server, f"GRANT CREATE ON SCHEMA ben_s TO {ANA}")
    adbc_run(server, "CREATE TABLE IF NOT EXISTS ben_s.shared2 (n INT)", ANA, ANA_PASSWORD)
    refused(server, "DROP TABLE ben_s.shared2", ANA, ANA_PASSWORD)
    refused(server, "CREATE OR REPLACE TABLE ben_s.shared2 AS SELECT 1 AS n", ANA, ANA_PASSWORD)
    assert as_ben(server, "SELECT n FROM ben_s.shared2") == [(8,)]


def test_changes_that_read_rows_need_select(governed):
    """A DELETE's WHERE and a MERGE's matching read the target: with INSERT, UPDATE and DELETE
    but no SELECT, ben adds rows and nothing else."""
    server = governed
    admin(server, "CREATE TABLE gov.ledger AS SELECT 1 AS k")
    admin(server, f"GRANT INSERT, UPDATE, DELETE ON gov.ledger TO {BEN}")
    merge = ("MERGE INTO gov.ledger AS t USING (SELECT 1 AS k) AS s ON t.k = s.k "
             "WHEN MATCHED THEN DELETE")
    assert "SELECT" in refused(server, merge)
    assert "SELECT (k)" in refused(server, "DELETE FROM gov.ledger WHERE k = 1")
    as_ben(server, "INSERT INTO gov.ledger VALUES (2)")
    admin(server, f"GRANT SELECT ON gov.ledger TO {BEN}")
    as_ben(server, merge)
    assert as_ben(server, "SELECT k FROM gov.ledger") == [(2,)]


def test_a_trino_session_keeps_its_role(governed):
    """`SET ROLE` through the trino client: the answer's X-Trino-Set-Role is carried back with
    the client's next statements, as Trino does."""
    server = governed
    assert trino_run(server, "SHOW CURRENT ROLES", user=ANA, password=ANA_PASSWORD) == [
        ["analysts"], ["public"]]
    from hostile import trino_connect
    with trino_connect(server, ANA, ANA_PASSWORD) as conn:
        cur = conn.cursor()
        cur.execute("SET ROLE NONE")
        cur.fetchall()
        cur.execute("SHOW CURRENT ROLES")
        assert cur.fetchall() == [["public"]]
        with pytest.raises(trino.exceptions.TrinoUserError) as failed:
            cur.execute("SELECT ssn FROM gov.orders")
            cur.fetchall()
        assert failed.value.error_name == "PERMISSION_DENIED"
        cur.execute("SET ROLE analysts")
        cur.fetchall()
        cur.execute("SELECT count(ssn) FROM gov.orders")
        assert cur.fetchall() == [[2]]


# --- tags (Lake Formation's tag-based access control) -------------------------------------------

TAG_USER, TAG_PASSWORD = "tg_user", "tg-user-password-1"
SALES_PUBLIC = "tg_domain = 'sales' AND tg_pii = 'false'"


@pytest.fixture(scope="module")
def tagged(governed):
    """Tags tg_domain (sales, hr) and tg_pii (true, false). Schema tg_sales carries
    domain sales and pii false, and its customers' ssn column pii true; tg_hr.staff carries
    domain hr, its dept column domain sales. tg_user holds the role tg_analysts, granted SELECT
    on what is tagged domain sales and pii false, and nothing else."""
    server = governed
    for sql in [
        "CREATE TAG tg_domain VALUES ('sales', 'hr')",
        "CREATE TAG tg_pii VALUES ('true', 'false')",
        "CREATE SCHEMA tg_sales",
        "ALTER SCHEMA tg_sales SET TAG tg_domain = 'sales', tg_pii = 'false'",
        "CREATE TABLE tg_sales.customers AS SELECT * FROM (VALUES (1, 'ann', '111-11-1111'), "
        "(2, 'bo', '222-22-2222'), (3, 'cy', '333-33-3333')) AS t (id, name, ssn)",
        "ALTER TABLE tg_sales.customers ALTER COLUMN ssn SET TAG tg_pii = 'true'",
        "CREATE SCHEMA tg_hr",
        "CREATE TABLE tg_hr.staff AS SELECT * FROM (VALUES (1, 'ops', 100), (2, 'it', 200)) "
        "AS t (id, dept, pay)",
        "ALTER TABLE tg_hr.staff SET TAG tg_domain = 'hr'",
        "ALTER TABLE tg_hr.staff ALTER COLUMN dept SET TAG tg_domain = 'sales', tg_pii = 'false'",
        "CREATE ROLE tg_analysts",
        f"GRANT SELECT ON TAGGED {SALES_PUBLIC} TO ROLE tg_analysts",
        f"CREATE USER {TAG_USER} PASSWORD '{TAG_PASSWORD}'",
        f"GRANT tg_analysts TO USER {TAG_USER}",
    ]:
        admin(server, sql)
    return server


def as_tagged(server, sql):
    return adbc_run(server, sql, TAG_USER, TAG_PASSWORD)


def test_a_grant_on_tags_covers_what_carries_them_on_every_door(tagged):
    server = tagged
    rows = [(1, "ann"), (2, "bo"), (3, "cy")]
    assert sorted(as_tagged(server, "SELECT id, name FROM tg_sales.customers")) == rows
    answer = http_query(server, "SELECT id, name FROM tg_sales.customers ORDER BY id",
                        TAG_USER, TAG_PASSWORD)
    assert answer["result"]["rows"] == [list(r) for r in rows], answer
    assert trino_run(server, "SELECT count(name) FROM tg_sales.customers",
                     user=TAG_USER, password=TAG_PASSWORD) == [[3]]
    # The column tagged pii = 'true' is not covered, by any door.
    assert "ssn" in refused(server, "SELECT ssn FROM tg_sales.customers", TAG_USER, TAG_PASSWORD)
    refused(server, "SELECT * FROM tg_sales.customers", TAG_USER, TAG_PASSWORD)
    with pytest.raises(trino.exceptions.TrinoUserError) as failed:
        trino_run(server, "SELECT ssn FROM tg_sales.customers", user=TAG_USER,
                  password=TAG_PASSWORD)
    assert failed.value.error_name == "PERMISSION_DENIED"
    # Within a table of another domain, the column tagged to match, and no other.
    assert sorted(as_tagged(server, "SELECT dept FROM tg_hr.staff")) == [("it",), ("ops",)]
    refused(server, "SELECT pay FROM tg_hr.staff", TAG_USER, TAG_PASSWORD)
    # SELECT only: no other privilege comes with it.
    refused(server, "INSERT INTO tg_sales.customers VALUES (4, 'di', '4')", TAG_USER,
            TAG_PASSWORD)
    # Listings show what the tags cover, and nothing else.
    schemas = {row[0] for row in as_tagged(server, "SHOW SCHEMAS")}
    assert {"tg_sales", "tg_hr"} <= schemas and "gov" not in schemas, schemas
    assert as_tagged(server, "SHOW TABLES FROM tg_hr") == [("staff",)]
    # A new table carrying the right tags (its schema's) is covered with no new grant.
    admin(server, "CREATE TABLE tg_sales.orders AS SELECT 10 AS order_id")
    assert as_tagged(server, "SELECT order_id FROM tg_sales.orders") == [(10,)]
    # So is an owner's table that its owner tags (the owner could grant it anyway).
    as_ben(server, "CREATE TABLE ben_s.leads AS SELECT 'lead' AS who")
    refused(server, "SELECT who FROM ben_s.leads", TAG_USER, TAG_PASSWORD)
    as_ben(server, f"ALTER TABLE ben_s.leads SET TAG {SALES_PUBLIC.replace(' AND', ',')}")
    assert as_tagged(server, "SELECT who FROM ben_s.leads") == [("lead",)]
    # A row filter for the role applies to what it reads through its grant on tags.
    admin(server, "CREATE ROW FILTER tg_low ON tg_sales.customers FOR ROLE tg_analysts "
                  "USING (id < 3)")
    assert sorted(as_tagged(server, "SELECT id FROM tg_sales.customers")) == [(1,), (2,)]
    admin(server, "DROP ROW FILTER tg_low ON tg_sales.customers")


def test_tags_change_what_is_covered_at_the_next_statement(tagged):
    server = tagged
    with adbc(server, TAG_USER, TAG_PASSWORD) as conn, conn.cursor() as cur:
        def run(sql):
            cur.execute(sql)
            return cur.fetchall()

        with pytest.raises(adbc_driver_manager.Error, match="(?i)permission denied"):
            run("SELECT ssn FROM tg_sales.customers")
        # Unset on the column, ssn carries its schema's pii = 'false' again.
        admin(server, "ALTER TABLE tg_sales.customers ALTER COLUMN ssn UNSET TAG tg_pii")
        assert len(run("SELECT ssn FROM tg_sales.customers")) == 3
        admin(server, "ALTER TABLE tg_sales.customers ALTER COLUMN ssn SET TAG tg_pii = 'true'")
        with pytest.raises(adbc_driver_manager.Error, match="(?i)permission denied"):
            run("SELECT ssn FROM tg_sales.customers")
        # Revoked (the expression written in another order), nothing is covered.
        admin(server, "REVOKE SELECT ON TAGGED tg_pii IN ('false') AND tg_domain = 'sales' "
                      "FROM ROLE tg_analysts")
        with pytest.raises(adbc_driver_manager.Error, match="(?i)permission denied"):
            run("SELECT id FROM tg_sales.customers")
        admin(server, f"GRANT SELECT ON TAGGED {SALES_PUBLIC} TO ROLE tg_analysts")
        assert len(run("SELECT id FROM tg_sales.customers")) == 3


def test_tags_are_made_by_admins_set_by_owners_and_shown_with_their_source(tagged):
    server = tagged
    assert ("tg_domain", "'hr', 'sales'") in as_tagged(server, "SHOW TAGS")
    shown = admin(server, "SHOW TAGS ON TABLE tg_sales.customers")
    assert (None, "tg_domain", "sales", "schema osprey.tg_sales") in shown, shown
    assert ("ssn", "tg_pii", "true", "column ssn") in shown, shown
    assert ("name", "tg_pii", "false", "schema osprey.tg_sales") in shown, shown
    grants = admin(server, "SHOW GRANTS ON TABLE tg_sales.customers")
    assert ("ROLE", "tg_analysts", "TAGGED", SALES_PUBLIC, "SELECT") in [g[:5] for g in grants]
    # Who may do what.
    refused(server, "CREATE TAG tg_other VALUES ('x')", TAG_USER, TAG_PASSWORD)
    refused(server, "ALTER TABLE gov.orders SET TAG tg_domain = 'sales'")  # ben owns not
    refused(server, f"GRANT SELECT ON TAGGED {SALES_PUBLIC} TO {BEN}", TAG_USER, TAG_PASSWORD)
    # Mistakes are named.
    for sql, expected in [
        ("ALTER TABLE tg_sales.customers SET TAG tg_domain = 'ops'", "'hr', 'sales'"),
        ("ALTER TABLE tg_sales.customers SET TAG tg_nope = 'x'", "CREATE TAG tg_nope"),
        ("ALTER TABLE tg_sales.customers ALTER COLUMN nope SET TAG tg_pii = 'true'",
         "column nope does not exist"),
        ("GRANT SELECT ON TAGGED tg_domain = 'ops' TO ROLE tg_analysts", "not 'ops'"),
        ("GRANT SELECT (id) ON TAGGED tg_domain = 'hr' TO ROLE tg_analysts", "tag the columns"),
        ("DROP TAG tg_domain", "revoke them"),
    ]:
        with pytest.raises(adbc_driver_manager.Error, match=expected):
            admin(server, sql)
    # A value added to a tag can be set; a tag no grant names can be dropped, with its uses.
    admin(server, "ALTER TAG tg_domain ADD VALUES ('ops')")
    admin(server, "CREATE TAG tg_tier VALUES ('gold')")
    admin(server, "ALTER TABLE tg_hr.staff SET TAG tg_domain = 'ops', tg_tier = 'gold'")
    admin(server, "DROP TAG tg_tier")
    assert "tg_tier" not in {row[1] for row in admin(server, "SHOW TAGS ON TABLE tg_hr.staff")}
    admin(server, "ALTER TABLE tg_hr.staff SET TAG tg_domain = 'hr'")
    # Governance statements are in the audit trail, allowed and denied.
    audit = admin(server, "SELECT user_name, decision, action, objects FROM system.audit "
                          "WHERE action IN ('GRANT', 'CREATE TAG') ORDER BY at")
    assert ("admin", "ALLOWED", "GRANT",
            [f"SELECT ON TAGGED {SALES_PUBLIC} TO role tg_analysts"]) in audit, audit
    assert (TAG_USER, "DENIED", "CREATE TAG", ["tag tg_other"]) in audit, audit
