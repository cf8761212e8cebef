-- Osprey catalog, version 6: external locations (issue 20).
-- A location is a URL prefix (s3://lake/raw/, file:///srv/data/) that an admin grants to users:
-- a user who is not an admin may create external tables and UNLOAD only under a location
-- granted to them. `users` is a JSON array of user names, or ["*"] for every user. A read-only
-- location takes external tables but no UNLOAD. `managed_by` is 'config' for the `[[locations]]`
-- of the coordinator's configuration (re-synchronised at every start), 'sql' for CREATE
-- LOCATION.

CREATE TABLE osprey_locations (
    location_name  TEXT   NOT NULL PRIMARY KEY,
    url            TEXT   NOT NULL,
    users          TEXT   NOT NULL,
    read_only      BIGINT NOT NULL,
    managed_by     TEXT   NOT NULL,
    created_at_ms  BIGINT NOT NULL
);
