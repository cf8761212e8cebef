-- Osprey catalog, version 4: how many times a query ran. A query whose executors were lost
-- before any row reached the client is planned and run again; `retries` says why, one line per
-- failed attempt.

ALTER TABLE osprey_queries ADD COLUMN attempts BIGINT NOT NULL DEFAULT 1;
ALTER TABLE osprey_queries ADD COLUMN retries TEXT;
