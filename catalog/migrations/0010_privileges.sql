-- Osprey catalog, version 10: roles, privileges and owners (issue 24).
-- Objects are named by (object_kind, catalog_name, schema_name, table_name), with '' for the
-- parts a kind does not have: ('CATALOG', 'lake', '', ''), ('SCHEMA', 'osprey', 'sales', ''),
-- ('TABLE', 'osprey', 'sales', 'orders'). Grantees are ('USER', name) or ('ROLE', name); the
-- role `public` holds every user and is never stored in osprey_roles.

CREATE TABLE osprey_roles (
    role_name      TEXT   NOT NULL PRIMARY KEY,
    created_by     TEXT   NOT NULL,
    created_at_ms  BIGINT NOT NULL
);

-- Who holds a role: a user, or another role (nested roles).
CREATE TABLE osprey_role_grants (
    role_name      TEXT   NOT NULL,
    grantee_kind   TEXT   NOT NULL,
    grantee_name   TEXT   NOT NULL,
    granted_by     TEXT   NOT NULL,
    granted_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (role_name, grantee_kind, grantee_name)
);

-- One privilege on one object to one grantee. `columns` is a JSON array of column names for
-- a column-level SELECT, [] for the whole object.
CREATE TABLE osprey_privileges (
    grantee_kind   TEXT   NOT NULL,
    grantee_name   TEXT   NOT NULL,
    object_kind    TEXT   NOT NULL,
    catalog_name   TEXT   NOT NULL,
    schema_name    TEXT   NOT NULL,
    table_name     TEXT   NOT NULL,
    privilege      TEXT   NOT NULL,
    columns        TEXT   NOT NULL,
    grant_option   BIGINT NOT NULL,
    granted_by     TEXT   NOT NULL,
    granted_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (grantee_kind, grantee_name, object_kind, catalog_name, schema_name,
                 table_name, privilege)
);

-- The user who created a schema or table owns it. Objects with no row here (made before
-- this version, or by the coordinator) are owned by the admins alone.
CREATE TABLE osprey_owners (
    object_kind    TEXT   NOT NULL,
    catalog_name   TEXT   NOT NULL,
    schema_name    TEXT   NOT NULL,
    table_name     TEXT   NOT NULL,
    owner_name     TEXT   NOT NULL,
    PRIMARY KEY (object_kind, catalog_name, schema_name, table_name)
);
