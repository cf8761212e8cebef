//! Object stores: local paths, S3 (and S3-compatible stores), GCS and Azure, with credentials
//! configured per location prefix.
//!
//! Every process (coordinator and executors) builds its own [`StorageRegistry`] from its own
//! configuration and environment. Plans carry only URLs such as `s3://bucket/path`; an executor
//! that receives a scan resolves the store, and so the credentials, itself. Credentials never
//! travel inside plans.
//!
//! A [`StorageLocation`] applies to one bucket (`s3://bucket`), or to every bucket of a scheme
//! (`s3://`). `object_store` keeps one client per bucket, so that is the finest grain at which
//! credentials can differ. Options are `object_store`'s configuration keys (`aws_region`,
//! `aws_endpoint`, `aws_access_key_id`, `aws_allow_http`, `google_service_account`,
//! `azure_storage_account_name`, ...). Whatever a location leaves unset comes from the
//! standard environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`) and, for S3, the instance
//! or web-identity credential providers.
//!
//! ```
//! use osprey_engine::{StorageLocation, StorageRegistry};
//! use datafusion::execution::object_store::ObjectStoreRegistry;
//!
//! let lake = StorageLocation::new("s3://lake")
//!     .unwrap()
//!     .with_option("aws_region", "eu-west-1")
//!     .with_option("aws_endpoint", "http://127.0.0.1:9000")
//!     .with_option("aws_allow_http", "true");
//! let registry = StorageRegistry::new(vec![lake]).unwrap();
//! assert!(registry.get_store(&"s3://lake/events/".parse().unwrap()).is_ok());
//! // Secrets are never printed.
//! let secret = StorageLocation::new("s3://other").unwrap().with_option("aws_secret_access_key", "shh");
//! assert!(!format!("{secret:?}").contains("shh"));
//! ```

mod vended;

pub use vended::{VENDED_SCHEME, VendedCredentials, VendedStore};

use datafusion::common::DataFusionError;
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use url::Url;

/// Why a storage location could not be configured or reached.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The prefix is not `scheme://bucket` or `scheme://`.
    #[error(
        "storage prefix {0:?} must be scheme://bucket (or scheme:// for every bucket), with scheme s3, gs or az; \
         credentials apply per bucket"
    )]
    BadPrefix(String),
    /// An option key the store does not know.
    #[error("unknown option {key:?} for {prefix}: see object_store's {scheme} configuration keys")]
    UnknownOption {
        /// The location's prefix.
        prefix: String,
        /// The scheme's family (S3, GCS, Azure).
        scheme: &'static str,
        /// The key as written.
        key: String,
    },
    /// Two locations name the same prefix.
    #[error("storage prefix {0} is configured twice")]
    Duplicate(String),
    /// A catalog vended credentials for a store other than S3.
    #[error("vended credentials are read for S3 buckets only, not for {0}")]
    VendedNotS3(String),
}

/// Options for the object store of one bucket (or of every bucket of a scheme).
#[derive(Clone, PartialEq, Eq)]
pub struct StorageLocation {
    prefix: Url,
    options: BTreeMap<String, String>,
}

impl std::fmt::Debug for StorageLocation {
    // Option values may be secrets: only the keys are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageLocation")
            .field("prefix", &self.prefix.as_str())
            .field("option_keys", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The family of store a URL scheme names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    S3,
    Gcs,
    Azure,
}

fn family(scheme: &str) -> Option<Family> {
    match scheme {
        "s3" | "s3a" => Some(Family::S3),
        "gs" | "gcs" => Some(Family::Gcs),
        "az" | "azure" | "abfs" | "abfss" | "adl" => Some(Family::Azure),
        _ => None,
    }
}

impl StorageLocation {
    /// A location for `prefix` (`s3://bucket` or `s3://`) with no options yet.
    pub fn new(prefix: &str) -> Result<Self, StorageError> {
        let bad = || StorageError::BadPrefix(prefix.to_string());
        let url = Url::parse(prefix).map_err(|_| bad())?;
        if family(url.scheme()).is_none() || !matches!(url.path(), "" | "/") {
            return Err(bad());
        }
        Ok(Self {
            prefix: url,
            options: BTreeMap::new(),
        })
    }

    /// Adds one `object_store` configuration option.
    pub fn with_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.insert(key.into(), value.into());
        self
    }

    /// The prefix as configured.
    pub fn prefix(&self) -> &str {
        self.prefix.as_str()
    }

    /// Whether this location covers `url` (same scheme, and same bucket unless it covers all).
    fn covers(&self, url: &Url) -> bool {
        self.prefix.scheme() == url.scheme()
            && (self.prefix.host_str().unwrap_or("").is_empty()
                || self.prefix.host_str() == url.host_str())
    }

    fn is_bucket_specific(&self) -> bool {
        !self.prefix.host_str().unwrap_or("").is_empty()
    }

    /// Checks every option key against the store's configuration keys.
    fn validate(&self) -> Result<(), StorageError> {
        let Some(family) = family(self.prefix.scheme()) else {
            return Err(StorageError::BadPrefix(self.prefix.to_string()));
        };
        for key in self.options.keys() {
            let known = match family {
                Family::S3 => AmazonS3ConfigKey::from_str(key).is_ok(),
                Family::Gcs => GoogleConfigKey::from_str(key).is_ok(),
                Family::Azure => AzureConfigKey::from_str(key).is_ok(),
            };
            if !known {
                return Err(StorageError::UnknownOption {
                    prefix: self.prefix.to_string(),
                    scheme: match family {
                        Family::S3 => "AmazonS3ConfigKey",
                        Family::Gcs => "GoogleConfigKey",
                        Family::Azure => "AzureConfigKey",
                    },
                    key: key.clone(),
                });
            }
        }
        Ok(())
    }
}

/// DataFusion's object store registry for one Osprey process: local files, plus cloud stores
/// built on first use from the configured locations and the environment.
#[derive(Debug)]
pub struct StorageRegistry {
    locations: Vec<StorageLocation>,
    local: DefaultObjectStoreRegistry,
    /// Stores by `scheme://bucket`, built once.
    built: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
    /// Credentials catalogs vended, by id (see [`vended`]).
    vended: vended::VendedStores,
}

impl StorageRegistry {
    /// A registry for these locations; every option key is checked now.
    pub fn new(locations: Vec<StorageLocation>) -> Result<Self, StorageError> {
        let mut seen = std::collections::HashSet::new();
        for location in &locations {
            location.validate()?;
            if !seen.insert(location.prefix.as_str().trim_end_matches('/').to_string()) {
                return Err(StorageError::Duplicate(location.prefix.to_string()));
            }
        }
        Ok(Self {
            locations,
            local: DefaultObjectStoreRegistry::new(),
            built: Mutex::new(HashMap::new()),
            vended: vended::VendedStores::default(),
        })
    }

    /// The options of the location that covers `url`: a bucket's own location wins over a
    /// scheme-wide one.
    fn options_for(&self, url: &Url) -> Option<&BTreeMap<String, String>> {
        self.locations
            .iter()
            .filter(|l| l.covers(url))
            .max_by_key(|l| l.is_bucket_specific())
            .map(|l| &l.options)
    }

    /// Drops the store built for `key` (`scheme://host`).
    fn forget_built(&self, key: &str) {
        self.built
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(key);
    }

    fn build(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        let family = family(url.scheme()).ok_or_else(|| {
            DataFusionError::Plan(format!(
                "unsupported storage scheme {:?} in {url}: use a local path, file://, s3://, gs:// or az://",
                url.scheme()
            ))
        })?;
        let options = self.options_for(url);
        let bucket_url = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
        let store: Arc<dyn ObjectStore> = match family {
            Family::S3 => {
                let mut builder = AmazonS3Builder::from_env().with_url(&bucket_url);
                for (key, value) in options.into_iter().flatten() {
                    if let Ok(key) = AmazonS3ConfigKey::from_str(key) {
                        builder = builder.with_config(key, value);
                    }
                }
                Arc::new(builder.build()?)
            }
            Family::Gcs => {
                let mut builder = GoogleCloudStorageBuilder::from_env().with_url(&bucket_url);
                for (key, value) in options.into_iter().flatten() {
                    if let Ok(key) = GoogleConfigKey::from_str(key) {
                        builder = builder.with_config(key, value);
                    }
                }
                Arc::new(builder.build()?)
            }
            Family::Azure => {
                let mut builder = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
                for (key, value) in options.into_iter().flatten() {
                    if let Ok(key) = AzureConfigKey::from_str(key) {
                        builder = builder.with_config(key, value);
                    }
                }
                Arc::new(builder.build()?)
            }
        };
        Ok(store)
    }
}

impl ObjectStoreRegistry for StorageRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        if url.scheme() == "file" {
            return self.local.register_store(url, store);
        }
        let key = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
        self.built
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key, store)
    }

    fn deregister_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        if url.scheme() == "file" {
            return self.local.deregister_store(url);
        }
        let key = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
        self.built
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&key)
            .ok_or_else(|| DataFusionError::Execution(format!("no object store for {key}")))
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        if url.scheme() == "file" {
            return self.local.get_store(url);
        }
        let key = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
        if url.scheme() == VENDED_SCHEME {
            // Built stores outlive nothing: expired credentials are refused here.
            let id = url.host_str().unwrap_or("");
            let cached = self
                .built
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .get(&key)
                .cloned();
            let store = match cached {
                Some(store) if self.vended.is_live(id) => store,
                _ => {
                    self.forget_built(&key);
                    let store = self.build_vended(id)?;
                    self.register_store(url, Arc::clone(&store));
                    store
                }
            };
            return Ok(store);
        }
        let mut built = self
            .built
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(store) = built.get(&key) {
            return Ok(Arc::clone(store));
        }
        let store = self.build(url)?;
        built.insert(key, Arc::clone(&store));
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_must_name_a_bucket_or_a_scheme() {
        assert!(StorageLocation::new("s3://bucket").is_ok());
        assert!(StorageLocation::new("s3://").is_ok());
        assert!(matches!(
            StorageLocation::new("s3://bucket/deeper/"),
            Err(StorageError::BadPrefix(_))
        ));
        assert!(matches!(
            StorageLocation::new("ftp://bucket"),
            Err(StorageError::BadPrefix(_))
        ));
    }

    #[test]
    fn unknown_option_keys_are_refused() {
        let typo = StorageLocation::new("s3://b")
            .unwrap()
            .with_option("aws_regoin", "x");
        let err = StorageRegistry::new(vec![typo]).unwrap_err();
        assert!(err.to_string().contains("aws_regoin"), "{err}");
    }

    #[test]
    fn a_bucket_location_wins_over_the_scheme_wide_one() {
        let all = StorageLocation::new("s3://").unwrap();
        let one = StorageLocation::new("s3://one")
            .unwrap()
            .with_option("aws_region", "eu-west-1");
        let url: Url = "s3://one/x".parse().unwrap();
        let registry = StorageRegistry::new(vec![all, one.clone()]).unwrap();
        assert_eq!(registry.options_for(&url), Some(&one.options));
    }
}
