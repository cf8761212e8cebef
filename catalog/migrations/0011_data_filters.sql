-- Osprey catalog, version 11: row filters and column masks (issue 24).
-- One row per filter or mask on one table, for one grantee (a role, or `public`). Tables are
-- named as in osprey_owners and osprey_privileges (object_kind is always 'TABLE'), so a
-- dropped or renamed table's filters go or move with its privileges.

CREATE TABLE osprey_data_filters (
    object_kind    TEXT   NOT NULL,
    catalog_name   TEXT   NOT NULL,
    schema_name    TEXT   NOT NULL,
    table_name     TEXT   NOT NULL,
    -- 'ROW FILTER' or 'COLUMN MASK'.
    filter_kind    TEXT   NOT NULL,
    filter_name    TEXT   NOT NULL,
    -- The masked column; '' for a row filter.
    column_name    TEXT   NOT NULL,
    grantee_kind   TEXT   NOT NULL,
    grantee_name   TEXT   NOT NULL,
    -- The SQL expression (a boolean for a filter, the column's value for a mask).
    expression     TEXT   NOT NULL,
    created_by     TEXT   NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (catalog_name, schema_name, table_name, filter_kind, filter_name)
);
