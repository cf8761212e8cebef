-- The Iceberg tables Osprey owns: each one's current metadata file. A commit swaps
-- `metadata_location` only if it is still the one the commit was built on (compare-and-swap),
-- as the JDBC catalog does. Keyed by table id, so a rename touches only `osprey_tables`.
CREATE TABLE osprey_iceberg_tables (
    table_id                   TEXT NOT NULL PRIMARY KEY,
    metadata_location          TEXT NOT NULL,
    previous_metadata_location TEXT
);
