//! The TOML configuration file. Every field is optional: a flag or environment variable beats
//! the file, and the file beats the built-in default. `osprey.example.toml` at the repository
//! root documents every key.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[cluster]`: shared by coordinator and executors.
    #[serde(default)]
    pub cluster: ClusterSection,
    /// `[coordinator]`.
    #[serde(default)]
    pub coordinator: CoordinatorSection,
    /// `[executor]`.
    #[serde(default)]
    pub executor: ExecutorSection,
    /// `[[users]]`: who may log in.
    #[serde(default)]
    pub users: Vec<UserEntry>,
    /// `[[workgroups]]`: admission control (queries at once, queue, time, scan and memory
    /// limits per query).
    #[serde(default)]
    pub workgroups: Vec<WorkgroupEntry>,
    /// `[log]`.
    #[serde(default)]
    pub log: LogSection,
    /// `[[storage]]`: object store options and credentials per bucket, read by the coordinator
    /// and by executors (each from its own file and environment).
    #[serde(default)]
    pub storage: Vec<StorageEntry>,
}

/// `[[storage]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageEntry {
    /// `s3://bucket`, `gs://bucket`, `az://container`, or `s3://` for every bucket.
    pub prefix: String,
    /// `object_store` configuration keys, e.g. `aws_region`, `aws_endpoint`.
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Debug for StorageEntry {
    // Option values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageEntry")
            .field("prefix", &self.prefix)
            .field("option_keys", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl FileConfig {
    /// The `[[storage]]` entries as locations, each checked.
    pub fn storage_locations(&self) -> Result<Vec<osprey_engine::storage::StorageLocation>> {
        self.storage
            .iter()
            .map(|entry| {
                let mut location = osprey_engine::storage::StorageLocation::new(&entry.prefix)?;
                for (key, value) in &entry.options {
                    location = location.with_option(key, value);
                }
                Ok(location)
            })
            .collect()
    }
}

/// `[cluster]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// The cluster secret itself.
    pub secret: Option<String>,
    /// A file holding the cluster secret (a Kubernetes Secret mount, say).
    pub secret_file: Option<PathBuf>,
}

/// `[coordinator]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorSection {
    pub flight_listen: Option<SocketAddr>,
    pub http_listen: Option<crate::HttpListen>,
    pub executors: Option<Vec<String>>,
    pub executor_dns: Option<Vec<String>>,
    pub discovery_interval_ms: Option<u64>,
    pub data_dir: Option<PathBuf>,
    pub tpch_scale_factor: Option<f64>,
    pub default_schema: Option<String>,
    pub memory_limit: Option<ByteSize>,
    pub target_partitions: Option<usize>,
    pub bytes_per_task: Option<ByteSize>,
    pub token_ttl_secs: Option<u64>,
    pub ticket_ttl_secs: Option<u64>,
    pub max_request_bytes: Option<ByteSize>,
    pub query_attempts: Option<u32>,
    pub query_timeout_secs: Option<u64>,
    pub default_workgroup: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub allow_insecure_remote: Option<bool>,
    pub catalog_url: Option<String>,
    pub warehouse: Option<String>,
    #[serde(default, deserialize_with = "parse_optional")]
    pub exchange_compression: Option<osprey_engine::ExchangeCompression>,
}

/// Deserializes an optional value through its `FromStr`.
fn parse_optional<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    let text: Option<String> = Option::deserialize(deserializer)?;
    text.map(|t| t.parse().map_err(serde::de::Error::custom))
        .transpose()
}

/// `[executor]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSection {
    pub listen: Option<SocketAddr>,
    pub memory_limit: Option<ByteSize>,
    pub spill_dir: Option<PathBuf>,
    pub shutdown_grace_secs: Option<u64>,
    pub threads: Option<usize>,
}

/// `[[users]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub name: String,
    pub password: String,
    /// Whether the user administers the service (manages users, sees every query).
    #[serde(default)]
    pub admin: bool,
}

impl std::fmt::Debug for UserEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "UserEntry {{ name: {:?}, password: <redacted>, admin: {} }}",
            self.name, self.admin
        )
    }
}

/// `[[workgroups]]`: unset limits take the defaults (16 at once, 1000 queued, the
/// coordinator's time limit, no scan or memory limit).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkgroupEntry {
    pub name: String,
    pub max_concurrent_queries: Option<u64>,
    pub max_queued_queries: Option<u64>,
    /// Seconds; 0 for no limit.
    pub query_timeout_secs: Option<u64>,
    pub max_scan_bytes: Option<ByteSize>,
    pub query_memory: Option<ByteSize>,
    /// Users whose queries run in this workgroup.
    #[serde(default)]
    pub users: Vec<String>,
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// A `RUST_LOG`-style filter such as `info` or `osprey=debug,info`.
    pub level: Option<String>,
    /// `text` or `json`.
    pub format: Option<String>,
}

impl FileConfig {
    /// Reads `path`, or returns an empty configuration when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("invalid configuration file {}", path.display()))
    }
}

/// A size in bytes, written as a number or a string such as `"512MiB"` or `"4GiB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl std::str::FromStr for ByteSize {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        osprey_coordinator::units::parse_byte_size(text)
            .map(ByteSize)
            .map_err(anyhow::Error::msg)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!("4GiB".parse::<ByteSize>().unwrap(), ByteSize(4 << 30));
        assert_eq!("512 MiB".parse::<ByteSize>().unwrap(), ByteSize(512 << 20));
        assert_eq!("1.5k".parse::<ByteSize>().unwrap(), ByteSize(1536));
        assert_eq!("100".parse::<ByteSize>().unwrap(), ByteSize(100));
        assert!("4 parsecs".parse::<ByteSize>().is_err());
        assert!("lots".parse::<ByteSize>().is_err());
    }

    #[test]
    fn example_file_parses() {
        let text = include_str!("../../osprey.example.toml");
        let config: FileConfig = toml::from_str(text).unwrap();
        assert_eq!(config.users.len(), 1);
        assert!(config.coordinator.flight_listen.is_some());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err =
            toml::from_str::<FileConfig>("[coordinator]\nflight_lisen = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("flight_lisen"), "{err}");
    }
}
