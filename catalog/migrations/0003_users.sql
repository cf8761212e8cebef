-- Osprey catalog, version 3: users. Passwords are stored only as Argon2id PHC strings.
-- `managed_by` is 'config' for users the coordinator's configuration defines (re-synchronised
-- at every start) and 'sql' for users made with CREATE USER.

CREATE TABLE osprey_users (
    user_name      TEXT   NOT NULL PRIMARY KEY,
    password_hash  TEXT   NOT NULL,
    is_admin       BIGINT NOT NULL,
    managed_by     TEXT   NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    updated_at_ms  BIGINT NOT NULL
);
