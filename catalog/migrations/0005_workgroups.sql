-- Osprey catalog, version 5: workgroups (admission control).
-- A workgroup bounds how many of its queries run at once and wait in its queue, how long each
-- may run, how many bytes each may scan and how much memory each may use per process. A NULL
-- limit means none (for the time limit: the coordinator's query_timeout_secs). `managed_by` is
-- 'config' for workgroups of the coordinator's configuration (re-synchronised at every start),
-- 'sql' for CREATE WORKGROUP. A user with no workgroup belongs to the default one.

CREATE TABLE osprey_workgroups (
    workgroup_name          TEXT   NOT NULL PRIMARY KEY,
    max_concurrent_queries  BIGINT NOT NULL,
    max_queued_queries      BIGINT NOT NULL,
    query_timeout_secs      BIGINT,
    max_scan_bytes          BIGINT,
    query_memory_bytes      BIGINT,
    managed_by              TEXT   NOT NULL,
    created_at_ms           BIGINT NOT NULL,
    updated_at_ms           BIGINT NOT NULL
);

ALTER TABLE osprey_users ADD COLUMN workgroup TEXT;

-- The workgroup a query ran in, and how long it waited in its queue.
ALTER TABLE osprey_queries ADD COLUMN workgroup TEXT;
ALTER TABLE osprey_queries ADD COLUMN queued_ms BIGINT NOT NULL DEFAULT 0;
