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
    /// `[[locations]]`: storage prefixes granted to users who are not admins.
    #[serde(default)]
    pub locations: Vec<LocationEntry>,
    /// `[[catalogs]]`: Iceberg catalogs attached for the life of the process.
    #[serde(default)]
    pub catalogs: Vec<CatalogEntry>,
    /// `[limits]`: what users may hold open on the coordinator, across every front door.
    #[serde(default)]
    pub limits: LimitsSection,
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
    pub fn storage_locations(&self) -> Result<Vec<osprey_engine::StorageLocation>> {
        self.storage
            .iter()
            .map(|entry| {
                let mut location = osprey_engine::StorageLocation::new(&entry.prefix)?;
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
    /// This process's certificate for mutual TLS with the rest of the cluster
    /// (`--cluster-tls-cert`).
    pub tls_cert: Option<PathBuf>,
    /// Its private key (`--cluster-tls-key`).
    pub tls_key: Option<PathBuf>,
    /// The CA the cluster's certificates are signed by (`--cluster-tls-ca`).
    pub tls_ca: Option<PathBuf>,
    /// The name executors' certificates hold (`--cluster-tls-server-name`).
    pub tls_server_name: Option<String>,
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
    /// The most bearer tokens (logins) one user holds at once.
    pub max_handles_per_user: Option<usize>,
    /// The most bytes one Flight SQL DoPut may bind (all its parameter batches).
    pub max_put_bytes: Option<ByteSize>,
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

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// The most statements one user holds open across every front door: Flight SQL result
    /// tickets and prepared statements, HTTP API queries, Trino statements.
    pub open_statements_per_user: Option<usize>,
    /// The most statements open on the coordinator, all users together.
    pub open_statements: Option<usize>,
}

/// `[executor]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSection {
    pub listen: Option<SocketAddr>,
    /// Serve plaintext gRPC on a non-loopback `listen` (see `--allow-insecure-remote`).
    pub allow_insecure_remote: Option<bool>,
    pub memory_limit: Option<MemorySize>,
    pub spill_dir: Option<PathBuf>,
    pub shutdown_grace_secs: Option<u64>,
    pub threads: Option<usize>,
    pub health_listen: Option<SocketAddr>,
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

/// `[[catalogs]]`: a catalog attached as `CREATE CATALOG name USING connector WITH (...)`
/// would: every key but `name` and `connector` is one of its properties (`type`, `uri`, ...).
#[derive(Deserialize)]
pub struct CatalogEntry {
    pub name: String,
    /// `iceberg` (the default).
    #[serde(default)]
    pub connector: String,
    #[serde(flatten)]
    pub properties: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Debug for CatalogEntry {
    // Property values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogEntry")
            .field("name", &self.name)
            .field("property_keys", &self.properties.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `[[locations]]`: a storage prefix users may create external tables over and (unless
/// read-only) `UNLOAD` to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationEntry {
    pub name: String,
    /// `s3://bucket/prefix/`, `file:///path/` or an absolute local path.
    pub url: String,
    /// Users it is granted to; `"*"` for every user.
    #[serde(default)]
    pub users: Vec<String>,
    /// External tables only, no `UNLOAD`.
    #[serde(default)]
    pub read_only: bool,
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
        osprey_service::parse_byte_size(text)
            .map(ByteSize)
            .map_err(anyhow::Error::msg)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        bytes_or_text(deserializer, ByteSize)
    }
}

/// Deserializes a size written as a number of bytes or as text (`"4GiB"`, `"75%"`).
fn bytes_or_text<'de, D, T>(deserializer: D, from_bytes: fn(u64) -> T) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = anyhow::Error>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Number(n) => Ok(from_bytes(n)),
        Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
    }
}

/// An executor's memory pool: a size (`4GiB`), or a share of the memory the process may use
/// (`75%`): of its container's limit (cgroup v2 or v1) when it has one, else of the machine's
/// memory. A share follows the pod's limit in Kubernetes without repeating it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MemorySize {
    /// A number of bytes.
    Bytes(u64),
    /// A fraction (0 to 1] of the available memory.
    ShareOfLimit(f64),
}

impl MemorySize {
    /// The size in bytes, reading the container's limit for a share.
    pub fn resolve(self) -> Result<u64> {
        match self {
            MemorySize::Bytes(bytes) => Ok(bytes),
            MemorySize::ShareOfLimit(share) => {
                let available = container_memory_limit().or_else(machine_memory).context(
                    "cannot tell how much memory this process may use; give a size such as 4GiB",
                )?;
                Ok((available as f64 * share) as u64)
            }
        }
    }
}

/// The memory limit of this process's cgroup, if it has one (v2, then v1).
fn container_memory_limit() -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    if let Some(text) = read("/sys/fs/cgroup/memory.max") {
        // "max" means no limit.
        return text.trim().parse().ok();
    }
    let v1: u64 = read("/sys/fs/cgroup/memory/memory.limit_in_bytes")?
        .trim()
        .parse()
        .ok()?;
    // cgroup v1 reports "no limit" as a number near i64::MAX.
    (v1 < 1 << 60).then_some(v1)
}

/// The machine's memory, from /proc/meminfo.
fn machine_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

impl std::str::FromStr for MemorySize {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        match text.trim().strip_suffix('%') {
            Some(percent) => {
                let percent: f64 = percent
                    .trim()
                    .parse()
                    .with_context(|| format!("invalid share {text:?}: expected e.g. 75%"))?;
                if !(percent > 0.0 && percent <= 100.0) {
                    anyhow::bail!("invalid share {text:?}: between 0% and 100%");
                }
                Ok(MemorySize::ShareOfLimit(percent / 100.0))
            }
            None => Ok(MemorySize::Bytes(text.parse::<ByteSize>()?.0)),
        }
    }
}

impl<'de> Deserialize<'de> for MemorySize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        bytes_or_text(deserializer, MemorySize::Bytes)
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
    fn catalogs_take_their_properties_as_keys() {
        let config: FileConfig = toml::from_str(
            "[[catalogs]]\nname = \"lake\"\ntype = \"rest\"\nuri = \"http://c\"\ncredential = \"id:s\"\n",
        )
        .unwrap();
        let lake = &config.catalogs[0];
        assert_eq!(lake.name, "lake");
        assert_eq!(lake.connector, "");
        assert_eq!(lake.properties["type"], "rest");
        assert_eq!(lake.properties.len(), 3);
        assert!(
            !format!("{lake:?}").contains("id:s"),
            "secrets stay out of Debug"
        );
    }

    #[test]
    fn example_file_parses() {
        let text = include_str!("../../osprey.example.toml");
        let config: FileConfig = toml::from_str(text).unwrap();
        assert_eq!(config.users.len(), 1);
        assert!(config.coordinator.flight_listen.is_some());
    }

    #[test]
    fn memory_takes_a_size_or_a_share_of_the_limit() {
        assert_eq!(
            "4GiB".parse::<MemorySize>().unwrap(),
            MemorySize::Bytes(4 << 30)
        );
        assert_eq!(
            "75%".parse::<MemorySize>().unwrap(),
            MemorySize::ShareOfLimit(0.75)
        );
        assert!("0%".parse::<MemorySize>().is_err());
        assert!("150%".parse::<MemorySize>().is_err());
        let share = MemorySize::ShareOfLimit(0.5).resolve().unwrap();
        assert!(share > 0);
    }

    #[test]
    fn workgroups_parse_with_units() {
        let text = "[coordinator]\ndefault_workgroup = \"adhoc\"\n\n[[workgroups]]\n\
                    name = \"etl\"\nmax_concurrent_queries = 2\nmax_scan_bytes = \"1TiB\"\n\
                    query_memory = \"8GiB\"\nusers = [\"loader\"]\n";
        let config: FileConfig = toml::from_str(text).unwrap();
        assert_eq!(
            config.coordinator.default_workgroup.as_deref(),
            Some("adhoc")
        );
        let etl = &config.workgroups[0];
        assert_eq!(etl.max_concurrent_queries, Some(2));
        assert_eq!(etl.max_queued_queries, None);
        assert_eq!(etl.max_scan_bytes, Some(ByteSize(1 << 40)));
        assert_eq!(etl.query_memory, Some(ByteSize(8 << 30)));
        assert_eq!(etl.users, vec!["loader".to_string()]);
    }

    #[test]
    fn deployment_files_parse() {
        let compose: FileConfig =
            toml::from_str(include_str!("../../deploy/compose/osprey.toml")).unwrap();
        assert_eq!(
            compose.coordinator.executors.as_ref().map(Vec::len),
            Some(3)
        );
        assert_eq!(compose.storage.len(), 1);
        let kubernetes: FileConfig = toml::from_str(include_str!(
            "../../deploy/kubernetes/base/coordinator.toml"
        ))
        .unwrap();
        assert!(kubernetes.coordinator.executor_dns.is_some());
        assert!(kubernetes.coordinator.tls_cert.is_some());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err =
            toml::from_str::<FileConfig>("[coordinator]\nflight_lisen = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("flight_lisen"), "{err}");
    }
}
