-- Osprey catalog, version 13: tags (issue 24, tag-based access control).
-- A tag is a key with the values it may take. Catalogs, schemas, tables and columns carry
-- tags; what an object carries passes down to what it holds unless set again there. Grants
-- on tag expressions are rows of osprey_privileges with object_kind 'TAGGED' and the
-- expression, as canonical JSON ({"domain":["sales"],"pii":["false"]}), in catalog_name.

CREATE TABLE osprey_tags (
    tag_key        TEXT   NOT NULL PRIMARY KEY,
    -- A JSON array of the allowed values.
    allowed_values TEXT   NOT NULL,
    created_by     TEXT   NOT NULL,
    created_at_ms  BIGINT NOT NULL
);

-- One tag on one object, or on one column of a table. Objects are named as in
-- osprey_privileges, so a dropped or renamed object's tags go or move with its grants.
CREATE TABLE osprey_tag_assignments (
    object_kind    TEXT   NOT NULL,
    catalog_name   TEXT   NOT NULL,
    schema_name    TEXT   NOT NULL,
    table_name     TEXT   NOT NULL,
    -- The column, or '' for the object itself.
    column_name    TEXT   NOT NULL,
    tag_key        TEXT   NOT NULL,
    tag_value      TEXT   NOT NULL,
    assigned_by    TEXT   NOT NULL,
    assigned_at_ms BIGINT NOT NULL,
    PRIMARY KEY (object_kind, catalog_name, schema_name, table_name, column_name, tag_key)
);
