-- Osprey catalog, version 2: the query history. One row per statement, inserted when it starts
-- and updated when it ends. Timestamps are milliseconds since the Unix epoch.

CREATE TABLE osprey_queries (
    query_id        TEXT   NOT NULL PRIMARY KEY,
    user_name       TEXT   NOT NULL,
    front_door      TEXT   NOT NULL,
    sql_text        TEXT   NOT NULL,
    state           TEXT   NOT NULL,
    error_code      TEXT,
    error_message   TEXT,
    submitted_at_ms BIGINT NOT NULL,
    finished_at_ms  BIGINT,
    row_count       BIGINT NOT NULL,
    bytes_scanned   BIGINT NOT NULL
);

CREATE INDEX osprey_queries_by_time ON osprey_queries (submitted_at_ms);
