//! The WITH clause of `CREATE CATALOG ... USING iceberg`: which properties each kind takes,
//! which of them are secrets, and the catalog client they build.
//!
//! Property names are pyiceberg's (`uri`, `warehouse`, `credential`, `token`, `prefix`,
//! `oauth2-server-uri`, `scope`, `glue.region`, ...), compared without case and with `_` read
//! as `-`.

use crate::error::QueryError;
use datafusion::execution::runtime_env::RuntimeEnv;
use osprey_iceberg::{
    GlueCatalog, GlueCatalogConfig, HadoopCatalog, IcebergCatalog, RestCatalog, RestCatalogConfig,
    SqlCatalog,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The connectors `USING` accepts.
pub(crate) const CONNECTORS: &[&str] = &["iceberg"];

/// The kinds of Iceberg catalog (`type = '...'`) and the properties each takes.
const KINDS: &[(&str, &[&str])] = &[
    (
        "rest",
        &[
            "type",
            "uri",
            "warehouse",
            "prefix",
            "credential",
            "token",
            "oauth2-server-uri",
            "scope",
        ],
    ),
    ("sql", &["type", "uri", "warehouse", "catalog-name"]),
    ("hadoop", &["type", "warehouse"]),
    (
        "glue",
        &[
            "type",
            "glue.region",
            "glue.endpoint",
            "glue.id",
            "glue.access-key-id",
            "glue.secret-access-key",
            "glue.session-token",
            "warehouse",
        ],
    ),
];

/// The kinds, as errors list them.
const KIND_NAMES: &str = "'rest', 'sql', 'hadoop' or 'glue'";

/// Properties whose whole value is a secret.
const SECRETS: &[&str] = &[
    "credential",
    "token",
    "glue.secret-access-key",
    "glue.session-token",
];

/// How secrets are shown.
pub(crate) const MASK: &str = "****";

/// A property name as stored: lower case, `_` read as `-`.
pub(crate) fn property_name(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// `properties` with every secret masked: whole secret values, and the password of a `uri`.
pub(crate) fn masked(properties: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    properties
        .iter()
        .map(|(name, value)| {
            let shown = if SECRETS.contains(&name.as_str()) {
                MASK.to_string()
            } else if name == "uri" {
                osprey_catalog::redact_url(value)
            } else {
                value.clone()
            };
            (name.clone(), shown)
        })
        .collect()
}

/// Checks `properties` for the connector `connector`: a known kind, only its properties, the
/// required ones present.
pub(crate) fn check(
    connector: &str,
    properties: &BTreeMap<String, String>,
) -> Result<(), QueryError> {
    if !CONNECTORS.contains(&connector) {
        return Err(QueryError::NotSupported(format!(
            "catalogs USING {connector}: Osprey attaches {} catalogs",
            CONNECTORS.join(", ")
        )));
    }
    let kind = properties.get("type").map(String::as_str).unwrap_or("");
    let Some((_, allowed)) = KINDS.iter().find(|(name, _)| *name == kind) else {
        return Err(QueryError::InvalidStatement(format!(
            "an Iceberg catalog needs type = {KIND_NAMES} in its WITH clause{}",
            match kind {
                "" => String::new(),
                other => format!(" (got '{other}')"),
            }
        )));
    };
    if let Some(unknown) = properties
        .keys()
        .find(|name| !allowed.contains(&name.as_str()))
    {
        return Err(QueryError::InvalidStatement(format!(
            "an Iceberg catalog of type '{kind}' has no property {unknown:?}: it takes {}",
            allowed.join(", ")
        )));
    }
    let required: &[&str] = match kind {
        "hadoop" => &["warehouse"],
        // The region may come from the coordinator's AWS_REGION.
        "glue" => &[],
        _ => &["uri"],
    };
    if let Some(missing) = required
        .iter()
        .find(|name| !properties.contains_key(**name))
    {
        return Err(QueryError::InvalidStatement(format!(
            "an Iceberg catalog of type '{kind}' needs {missing} in its WITH clause"
        )));
    }
    if properties.contains_key("credential") && properties.contains_key("token") {
        return Err(QueryError::InvalidStatement(
            "give a REST catalog either credential ('client_id:client_secret') or token, not both"
                .to_string(),
        ));
    }
    Ok(())
}

/// The client of the Iceberg catalog `name`, as `properties` (already [`check`]ed) describe
/// it; storage (the Hadoop catalog's warehouse) is reached through `runtime`'s object stores.
pub(crate) fn client(
    name: &str,
    properties: &BTreeMap<String, String>,
    runtime: &RuntimeEnv,
) -> Result<Arc<dyn IcebergCatalog>, QueryError> {
    let get = |key: &str| properties.get(key).cloned();
    let invalid = |err: osprey_iceberg::IcebergError| {
        QueryError::InvalidStatement(format!("catalog {name}: {err}"))
    };
    Ok(match properties.get("type").map(String::as_str) {
        Some("rest") => Arc::new(
            RestCatalog::new(RestCatalogConfig {
                uri: get("uri").unwrap_or_default(),
                warehouse: get("warehouse"),
                prefix: get("prefix"),
                credential: get("credential"),
                token: get("token"),
                oauth2_server_uri: get("oauth2-server-uri"),
                scope: get("scope"),
            })
            .map_err(invalid)?,
        ),
        Some("sql") => Arc::new(
            SqlCatalog::new(
                &get("uri").unwrap_or_default(),
                &get("catalog-name").unwrap_or_else(|| name.to_string()),
            )
            .map_err(invalid)?
            .with_warehouse(get("warehouse")),
        ),
        Some("hadoop") => {
            let warehouse = crate::locations::normalize(&get("warehouse").unwrap_or_default())?;
            let store_location =
                osprey_iceberg::StoreLocation::parse(&warehouse).map_err(invalid)?;
            let store = runtime.object_store(store_location.store_url())?;
            Arc::new(HadoopCatalog::new(store, &warehouse).map_err(invalid)?)
        }
        Some("glue") => Arc::new(
            GlueCatalog::new(GlueCatalogConfig {
                region: get("glue.region"),
                endpoint: get("glue.endpoint"),
                catalog_id: get("glue.id"),
                access_key_id: get("glue.access-key-id"),
                secret_access_key: get("glue.secret-access-key"),
                session_token: get("glue.session-token"),
                warehouse: get("warehouse"),
            })
            .map_err(invalid)?,
        ),
        _ => {
            return Err(QueryError::InvalidStatement(format!(
                "catalog {name} needs type = {KIND_NAMES}"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (property_name(k), v.to_string()))
            .collect()
    }

    #[test]
    fn properties_are_checked_by_kind_and_secrets_masked() {
        let rest = props(&[
            ("type", "rest"),
            ("URI", "http://ana:pw@catalog:8181"),
            ("credential", "id:secret"),
            ("oauth2_server_uri", "http://idp/token"),
        ]);
        check("iceberg", &rest).unwrap();
        let shown = masked(&rest);
        assert_eq!(shown["credential"], MASK);
        assert!(!shown["uri"].contains("pw"), "{}", shown["uri"]);
        assert_eq!(shown["oauth2-server-uri"], "http://idp/token");
        for (bad, why) in [
            (props(&[("type", "rest")]), "needs uri"),
            (
                props(&[("type", "sql"), ("uri", "sqlite:///x"), ("token", "t")]),
                "no property",
            ),
            (props(&[("uri", "x")]), "needs type"),
            (props(&[("type", "hive")]), "needs type"),
        ] {
            let err = check("iceberg", &bad).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
        assert!(check("delta", &rest).is_err());
        let glue = props(&[
            ("type", "glue"),
            ("glue.region", "eu-west-1"),
            ("glue.access-key-id", "AKID"),
            ("glue.secret-access-key", "s3cr3t"),
        ]);
        check("iceberg", &glue).unwrap();
        assert_eq!(masked(&glue)["glue.secret-access-key"], MASK);
        assert_eq!(masked(&glue)["glue.access-key-id"], "AKID");
    }
}
