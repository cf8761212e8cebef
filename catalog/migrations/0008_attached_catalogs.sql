-- Osprey catalog, version 8: attached catalogs (issue 22).
-- `CREATE CATALOG name USING iceberg WITH (...)` attaches another catalog (an Iceberg REST,
-- SQL or Hadoop catalog) whose namespaces and tables read as `name.namespace.table`.
-- `properties` is the WITH clause as a JSON object, secrets included: they are never shown
-- back (SHOW CREATE CATALOG masks them). Catalogs of the configuration file (`[[catalogs]]`)
-- are not stored here.

CREATE TABLE osprey_attached_catalogs (
    catalog_name   TEXT   NOT NULL PRIMARY KEY,
    connector      TEXT   NOT NULL,
    properties     TEXT   NOT NULL,
    created_by     TEXT   NOT NULL,
    created_at_ms  BIGINT NOT NULL
);
