//! Credentials a catalog vends for one table (the Iceberg REST catalog's "vended credentials"),
//! kept apart from plans.
//!
//! The coordinator registers what a catalog sent with [`StorageRegistry::vend`] and gets an
//! opaque store URL, `osprey-vended://<id>`, which the table's scan names instead of
//! `s3://bucket`. Plans carry only that URL. Executors learn the credentials behind an id
//! from the coordinator over the cluster's authenticated channel, before the first task of
//! each query reaches them ([`StorageRegistry::live_vended`] there,
//! [`StorageRegistry::accept_vended`] here). Each process builds the store for an id from the
//! bucket's own `[[storage]]` options (endpoint, region, ...) with the vended keys in place of
//! any configured ones, and never with the process's own AWS environment credentials.
//!
//! Credentials expire when the catalog says (`s3.session-token-expires-at-ms`), else an hour
//! after they were last vended; an expired id is refused with a message that says to run the
//! statement again (which loads the table, and so its credentials, afresh).

use super::{Family, StorageError, StorageRegistry, family};
use datafusion::common::DataFusionError;
use datafusion::execution::object_store::ObjectStoreUrl;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The scheme of the store URLs that stand for vended credentials.
pub const VENDED_SCHEME: &str = "osprey-vended";

/// How long credentials without an expiry of their own are kept after they were last vended.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// How many sets of vended credentials a process keeps at most (the soonest to expire go
/// first).
const MAX_VENDED: usize = 1024;

/// S3 credentials a catalog vended for a table.
#[derive(Clone, PartialEq, Eq)]
pub struct VendedCredentials {
    /// The access key id.
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
    /// When they expire, in milliseconds since the epoch.
    pub expires_at_ms: Option<i64>,
    /// The bucket's region, used when the bucket's `[[storage]]` options set none.
    pub region: Option<String>,
}

impl std::fmt::Debug for VendedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendedCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// One set of vended credentials as processes share it: its id and the bucket it reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendedStore {
    /// The id in `osprey-vended://<id>`.
    pub id: String,
    /// The bucket, `s3://name`.
    pub bucket: String,
    /// The credentials.
    pub credentials: VendedCredentials,
}

impl VendedStore {
    /// The store URL plans name for it.
    pub fn store_url(&self) -> ObjectStoreUrl {
        // The id is lower-case hex: always a valid host.
        ObjectStoreUrl::parse(format!("{VENDED_SCHEME}://{}", self.id))
            .expect("a hex id is a valid host")
    }

    fn expires_at(&self) -> SystemTime {
        match self.credentials.expires_at_ms {
            Some(ms) => UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64),
            None => SystemTime::now() + DEFAULT_LIFETIME,
        }
    }
}

/// The vended credentials a process knows, by id.
#[derive(Debug, Default)]
pub(super) struct VendedStores {
    entries: Mutex<HashMap<String, (VendedStore, SystemTime)>>,
}

impl VendedStores {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (VendedStore, SystemTime)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps `store` (replacing one of the same id), dropping expired ones; returns the ids
    /// dropped, whose built stores must go too.
    fn keep(&self, store: VendedStore) -> Vec<String> {
        let now = SystemTime::now();
        let mut entries = self.entries();
        let mut dropped: Vec<String> = entries
            .iter()
            .filter(|(_, (_, expires))| *expires <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &dropped {
            entries.remove(id);
        }
        while entries.len() >= MAX_VENDED {
            let Some(soonest) = entries
                .iter()
                .min_by_key(|(_, (_, expires))| *expires)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            entries.remove(&soonest);
            dropped.push(soonest);
        }
        let expires = store.expires_at();
        entries.insert(store.id.clone(), (store, expires));
        dropped
    }

    /// Whether `id` is known and has not expired.
    pub(super) fn is_live(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    /// The live store of `id`.
    fn get(&self, id: &str) -> Option<VendedStore> {
        let entries = self.entries();
        let (store, expires) = entries.get(id)?;
        (*expires > SystemTime::now()).then(|| store.clone())
    }
}

impl StorageRegistry {
    /// Registers credentials a catalog vended for `bucket` (`s3://name`) and returns the store
    /// URL a table's scan names to read with them. The same credentials for the same bucket
    /// get the same URL (their lifetime renewed).
    pub fn vend(
        &self,
        bucket: &str,
        credentials: VendedCredentials,
    ) -> Result<ObjectStoreUrl, StorageError> {
        let url = url::Url::parse(bucket).map_err(|_| StorageError::BadPrefix(bucket.into()))?;
        if family(url.scheme()) != Some(Family::S3) || url.host_str().is_none() {
            return Err(StorageError::VendedNotS3(bucket.to_string()));
        }
        let bucket = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
        let existing = self
            .vended
            .entries()
            .values()
            .find(|(store, _)| store.bucket == bucket && store.credentials == credentials)
            .map(|(store, _)| store.id.clone());
        let id = existing.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let store = VendedStore {
            id,
            bucket,
            credentials,
        };
        let store_url = store.store_url();
        self.accept_vended(vec![store]);
        Ok(store_url)
    }

    /// Keeps vended credentials the coordinator shared with this process.
    pub fn accept_vended(&self, stores: Vec<VendedStore>) {
        for store in stores {
            for dropped in self.vended.keep(store) {
                self.forget_built(&format!("{VENDED_SCHEME}://{dropped}"));
            }
        }
    }

    /// Every set of vended credentials that has not expired, to share with executors.
    pub fn live_vended(&self) -> Vec<VendedStore> {
        let now = SystemTime::now();
        self.vended
            .entries()
            .values()
            .filter(|(_, expires)| *expires > now)
            .map(|(store, _)| store.clone())
            .collect()
    }

    /// The store for `osprey-vended://<id>`: the bucket's options with the vended keys.
    pub(super) fn build_vended(&self, id: &str) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        let Some(vended) = self.vended.get(id) else {
            return Err(DataFusionError::Execution(format!(
                "the storage credentials a catalog vended for this table ({VENDED_SCHEME}://{id}) \
                 have expired or are not known to this process: run the statement again"
            )));
        };
        let bucket = url::Url::parse(&vended.bucket)
            .map_err(|err| DataFusionError::Execution(format!("{}: {err}", vended.bucket)))?;
        let credentials = &vended.credentials;
        // Not `from_env`: the process's own AWS credentials must not mix with vended ones.
        let mut builder = AmazonS3Builder::new().with_url(&vended.bucket);
        let mut region_set = false;
        for (key, value) in self.options_for(&bucket).into_iter().flatten() {
            if let Ok(key) = AmazonS3ConfigKey::from_str(key) {
                region_set |= key == AmazonS3ConfigKey::Region;
                builder = builder.with_config(key, value);
            }
        }
        if !region_set && let Some(region) = &credentials.region {
            builder = builder.with_region(region);
        }
        builder = builder
            .with_access_key_id(&credentials.access_key_id)
            .with_secret_access_key(&credentials.secret_access_key);
        if let Some(token) = &credentials.session_token {
            builder = builder.with_token(token);
        }
        Ok(Arc::new(builder.build()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::object_store::ObjectStoreRegistry;

    fn keys(id: &str, expires_at_ms: Option<i64>) -> VendedCredentials {
        VendedCredentials {
            access_key_id: id.to_string(),
            secret_access_key: "secret".to_string(),
            session_token: Some("token".to_string()),
            expires_at_ms,
            region: Some("us-east-1".to_string()),
        }
    }

    #[test]
    fn vended_credentials_get_one_url_and_reach_only_their_process() {
        let coordinator = StorageRegistry::new(vec![]).unwrap();
        let first = coordinator.vend("s3://lake", keys("A", None)).unwrap();
        assert_eq!(first.as_str().split("://").next(), Some(VENDED_SCHEME));
        assert_eq!(
            coordinator.vend("s3://lake/", keys("A", None)).unwrap(),
            first
        );
        assert_ne!(
            coordinator.vend("s3://lake", keys("B", None)).unwrap(),
            first
        );
        assert!(coordinator.get_store(first.as_ref()).is_ok());
        assert!(!format!("{:?}", coordinator.live_vended()).contains("secret"));

        // An executor knows an id only once the coordinator shared it.
        let executor = StorageRegistry::new(vec![]).unwrap();
        let err = executor.get_store(first.as_ref()).unwrap_err().to_string();
        assert!(err.contains("run the statement again"), "{err}");
        executor.accept_vended(coordinator.live_vended());
        assert!(executor.get_store(first.as_ref()).is_ok());

        assert!(matches!(
            coordinator.vend("gs://lake", keys("A", None)),
            Err(StorageError::VendedNotS3(_))
        ));
    }

    #[test]
    fn expired_credentials_are_refused_and_forgotten() {
        let registry = StorageRegistry::new(vec![]).unwrap();
        let url = registry.vend("s3://lake", keys("A", Some(1))).unwrap();
        assert!(registry.live_vended().is_empty());
        assert!(registry.get_store(url.as_ref()).is_err());
    }
}
