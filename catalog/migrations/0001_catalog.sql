-- Osprey catalog, version 1. Portable SQL: the same text runs on SQLite and PostgreSQL.
-- Timestamps are milliseconds since the Unix epoch.

CREATE TABLE osprey_schemas (
    catalog_name   TEXT   NOT NULL,
    schema_name    TEXT   NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (catalog_name, schema_name)
);

-- Tables and views. `definition` is JSON (see `TableDefinition`): location, format, options,
-- partition columns, the Arrow schema stored at CREATE time, and a view's SQL.
CREATE TABLE osprey_tables (
    table_id       TEXT   NOT NULL PRIMARY KEY,
    catalog_name   TEXT   NOT NULL,
    schema_name    TEXT   NOT NULL,
    table_name     TEXT   NOT NULL,
    kind           TEXT   NOT NULL,
    definition     TEXT   NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    UNIQUE (catalog_name, schema_name, table_name)
);

-- The data files of managed tables. A file is part of its table once its row is committed:
-- readers never list storage for managed tables, so a half-written file is never visible.
CREATE TABLE osprey_table_files (
    table_id       TEXT   NOT NULL,
    path           TEXT   NOT NULL,
    size_bytes     BIGINT NOT NULL,
    row_count      BIGINT NOT NULL,
    write_id       TEXT   NOT NULL,
    PRIMARY KEY (table_id, path)
);

-- Writes that started but have not been published or cleaned up yet. A coordinator that
-- restarts deletes what these left under their staging prefix.
CREATE TABLE osprey_pending_writes (
    write_id       TEXT   NOT NULL PRIMARY KEY,
    staging_prefix TEXT   NOT NULL,
    started_at_ms  BIGINT NOT NULL
);
