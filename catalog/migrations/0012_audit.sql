-- Osprey catalog, version 12: the audit trail (issue 24). One row per access decision,
-- allowed or denied, written before the statement it decides runs.

CREATE TABLE osprey_audit (
    audit_id       TEXT   NOT NULL PRIMARY KEY,
    at_ms          BIGINT NOT NULL,
    -- The statement's query id ('' for a decision outside a tracked statement).
    statement_id   TEXT   NOT NULL,
    user_name      TEXT   NOT NULL,
    -- The roles the session acted with, comma-separated.
    roles          TEXT   NOT NULL,
    -- 'ALLOWED' or 'DENIED'.
    decision       TEXT   NOT NULL,
    -- What was decided: 'query' for a planned statement, or the statement's kind.
    action         TEXT   NOT NULL,
    -- JSON arrays of text: each privilege on each object, and the filters and masks applied.
    objects        TEXT   NOT NULL,
    filters        TEXT   NOT NULL,
    masks          TEXT   NOT NULL,
    -- The refusal, for a denial.
    message        TEXT   NOT NULL
);

CREATE INDEX osprey_audit_at ON osprey_audit (at_ms);
