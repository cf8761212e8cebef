//! Storage credentials a REST catalog vends with a table (`X-Iceberg-Access-Delegation:
//! vended-credentials`): the `storage-credentials` of a LoadTableResult, the one whose prefix
//! is the longest that covers the table's location, else its `config`. S3 keys only
//! (`s3.access-key-id`, `s3.secret-access-key`, `s3.session-token`,
//! `s3.session-token-expires-at-ms`, `client.region`); an endpoint the server names is not
//! followed: the bucket is reached as the process's own storage configuration says.

use serde::Deserialize;
use std::collections::HashMap;

/// S3 credentials a catalog vended for one table. `Debug` shows no secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TableCredentials {
    /// The access key id.
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
    /// When they expire, in milliseconds since the epoch.
    pub expires_at_ms: Option<i64>,
    /// The bucket's region, when the catalog says.
    pub region: Option<String>,
}

impl std::fmt::Debug for TableCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// One entry of `storage-credentials`.
#[derive(Deserialize)]
pub(super) struct StorageCredential {
    prefix: String,
    #[serde(default)]
    config: HashMap<String, String>,
}

/// The credentials for the table at `location` among what the server sent.
pub(super) fn table_credentials(
    location: &str,
    storage_credentials: &[StorageCredential],
    config: &HashMap<String, String>,
) -> Option<TableCredentials> {
    let chosen = storage_credentials
        .iter()
        .filter(|entry| location.starts_with(&entry.prefix))
        .max_by_key(|entry| entry.prefix.len())
        .map(|entry| &entry.config)
        .unwrap_or(config);
    let get = |key: &str| chosen.get(key).filter(|v| !v.is_empty()).cloned();
    Some(TableCredentials {
        access_key_id: get("s3.access-key-id")?,
        secret_access_key: get("s3.secret-access-key")?,
        session_token: get("s3.session-token"),
        expires_at_ms: get("s3.session-token-expires-at-ms").and_then(|ms| ms.parse().ok()),
        region: get("client.region").or_else(|| get("s3.region")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_longest_covering_prefix_wins_then_the_config() {
        let config = map(&[("s3.access-key-id", "C"), ("s3.secret-access-key", "cs")]);
        let entries = vec![
            StorageCredential {
                prefix: "s3://lake/".to_string(),
                config: map(&[("s3.access-key-id", "L"), ("s3.secret-access-key", "ls")]),
            },
            StorageCredential {
                prefix: "s3://lake/db/t".to_string(),
                config: map(&[
                    ("s3.access-key-id", "T"),
                    ("s3.secret-access-key", "ts"),
                    ("s3.session-token", "tok"),
                    ("s3.session-token-expires-at-ms", "1700000000000"),
                ]),
            },
        ];
        let table = table_credentials("s3://lake/db/t", &entries, &config).unwrap();
        assert_eq!(table.access_key_id, "T");
        assert_eq!(table.expires_at_ms, Some(1_700_000_000_000));
        assert!(!format!("{table:?}").contains("ts"));
        let other = table_credentials("s3://lake/db/u", &entries, &config).unwrap();
        assert_eq!(other.access_key_id, "L");
        assert_eq!(
            table_credentials("s3://else/x", &entries, &config)
                .unwrap()
                .access_key_id,
            "C"
        );
        assert!(table_credentials("s3://else/x", &[], &HashMap::new()).is_none());
    }
}
