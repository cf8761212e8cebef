//! External locations: which storage a user may reach through Osprey.
//!
//! Osprey reads and writes storage with the service's own account and credentials, so a
//! location a statement names is checked before anything touches it:
//!
//! - The warehouse (managed tables) and the data directory (the catalog, spill files, the admin
//!   password) are never reachable through an external table or an `UNLOAD`, by anyone: a
//!   location inside one of them, or holding one of them, is refused.
//! - Admins may use any other location.
//! - Other users may create external tables (read) and `UNLOAD` (write) only under a location
//!   granted to them: `[[locations]]` in the configuration, or `CREATE LOCATION` (see
//!   [`crate::locations_sql`]). A read-only location takes external tables only. The storage
//!   credentials used there are those of the location's bucket (`[[storage]]`).
//!
//! Locations are compared as normalized URLs: paths with `.` or `..` segments are refused, and
//! local paths are resolved through symbolic links first, so a link inside a granted directory
//! cannot lead outside it.

use crate::auth::Principal;
use crate::error::QueryError;
use datafusion::datasource::listing::ListingTableUrl;
use osprey_catalog::{CatalogStore, LocationRecord, ManagedBy, now_ms};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use url::Url;

/// What a statement does at a location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads it: `CREATE EXTERNAL TABLE`.
    Read,
    /// Writes it: `UNLOAD`.
    Write,
}

/// A location from the configuration (`[[locations]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationConfig {
    /// Its name.
    pub name: String,
    /// The URL prefix (`s3://lake/raw/`, `file:///srv/data/`, or an absolute local path).
    pub url: String,
    /// The users it is granted to; `"*"` for every user.
    pub users: Vec<String>,
    /// External tables only, no `UNLOAD`.
    pub read_only: bool,
}

/// The granted locations and the protected roots, shared by the coordinator.
#[derive(Clone)]
pub struct Locations {
    inner: Arc<Inner>,
}

struct Inner {
    store: CatalogStore,
    grants: RwLock<BTreeMap<String, LocationRecord>>,
    /// The warehouse and the data directory, as normalized URL prefixes.
    protected: Vec<String>,
}

impl std::fmt::Debug for Locations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locations")
            .field("protected", &self.inner.protected)
            .finish_non_exhaustive()
    }
}

impl Locations {
    /// Loads the locations from `store` after writing the configured ones into it (replacing
    /// what the configuration defined before, so a location removed from it is dropped).
    /// `protected` are the warehouse and the data directory.
    pub async fn load(
        store: CatalogStore,
        configured: &[LocationConfig],
        protected: &[&str],
    ) -> Result<Self, QueryError> {
        let protected = protected
            .iter()
            .map(|root| normalize(root))
            .collect::<Result<Vec<_>, _>>()?;
        for stored in store.locations().await? {
            if stored.managed_by == ManagedBy::Config
                && !configured.iter().any(|c| c.name == stored.name)
            {
                store.drop_location(&stored.name).await?;
            }
        }
        for location in configured {
            let record = LocationRecord {
                name: location.name.clone(),
                url: normalize(&location.url)?,
                users: location.users.clone(),
                read_only: location.read_only,
                managed_by: ManagedBy::Config,
                created_at_ms: now_ms(),
            };
            check_not_protected(&record.url, &protected)?;
            store.create_location(&record, true).await?;
        }
        let grants = store
            .locations()
            .await?
            .into_iter()
            .map(|record| (record.name.clone(), record))
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                grants: RwLock::new(grants),
                protected,
            }),
        })
    }

    fn grants(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, LocationRecord>> {
        self.inner.grants.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Every location, by name.
    pub fn list(&self) -> Vec<LocationRecord> {
        self.grants().values().cloned().collect()
    }

    /// Checks that `principal` (`None`: the coordinator itself) may `access` `location`, and
    /// returns the location as the normalized URL that was checked. `usage` tells whether
    /// the principal holds `USAGE` on a location (by name) through governance
    /// (`GRANT USAGE ON LOCATION`), besides the users a location names itself.
    pub fn check(
        &self,
        principal: Option<&Principal>,
        location: &str,
        access: Access,
        usage: &dyn Fn(&str) -> bool,
    ) -> Result<String, QueryError> {
        let url = normalize(location)?;
        // The coordinator registers its own datasets (TPC-H) under the data directory.
        let Some(principal) = principal else {
            return Ok(url);
        };
        check_not_protected(&url, &self.inner.protected)?;
        if principal.is_admin {
            return Ok(url);
        }
        let grants = self.grants();
        let granted: Vec<&LocationRecord> = grants
            .values()
            .filter(|grant| granted_to(grant, &principal.user) || usage(&grant.name))
            .collect();
        let covering = granted
            .iter()
            .filter(|grant| url.starts_with(&grant.url))
            .collect::<Vec<_>>();
        if covering.is_empty() {
            let yours = match granted.is_empty() {
                true => "none are granted to you".to_string(),
                false => format!(
                    "yours are {}",
                    granted
                        .iter()
                        .map(|g| format!("{} ({})", g.name, g.url))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            return Err(QueryError::PermissionDenied(format!(
                "{url} is not under a location granted to user {}: {yours}. An admin grants \
                 one with GRANT USAGE ON LOCATION name TO USER {} (or ROLE r)",
                principal.user, principal.user
            )));
        }
        if access == Access::Write && covering.iter().all(|grant| grant.read_only) {
            return Err(QueryError::PermissionDenied(format!(
                "{url} is under read-only location {}: UNLOAD needs a location granted for \
                 writing",
                covering[0].name
            )));
        }
        Ok(url)
    }

    /// Checks that `location` is outside Osprey's own storage (the warehouse and the data
    /// directory), for storage that admins configured (an attached catalog's tables), and
    /// returns it as a normalized URL.
    pub fn check_unprotected(&self, location: &str) -> Result<String, QueryError> {
        let url = normalize(location)?;
        check_not_protected(&url, &self.inner.protected)?;
        Ok(url)
    }

    /// `CREATE [OR REPLACE] LOCATION`.
    pub async fn create(
        &self,
        mut record: LocationRecord,
        replace: bool,
    ) -> Result<(), QueryError> {
        record.url = normalize(&record.url)?;
        check_not_protected(&record.url, &self.inner.protected)?;
        if let Some(existing) = self.grants().get(&record.name)
            && existing.managed_by == ManagedBy::Config
        {
            return Err(configured(&record.name));
        }
        self.inner.store.create_location(&record, replace).await?;
        self.inner
            .grants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(record.name.clone(), record);
        Ok(())
    }

    /// `DROP LOCATION`.
    pub async fn drop(&self, name: &str, if_exists: bool) -> Result<(), QueryError> {
        match self.grants().get(name) {
            None if if_exists => return Ok(()),
            Some(existing) if existing.managed_by == ManagedBy::Config => {
                return Err(configured(name));
            }
            _ => {}
        }
        self.inner.store.drop_location(name).await?;
        self.inner
            .grants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        Ok(())
    }
}

/// Whether `location` is granted to `user` (by name, or to every user with `"*"`).
pub fn granted_to(location: &LocationRecord, user: &str) -> bool {
    location.users.iter().any(|u| u == "*" || u == user)
}

fn configured(name: &str) -> QueryError {
    QueryError::InvalidStatement(format!(
        "location {name} is defined in the coordinator's configuration ([[locations]]): change \
         it there"
    ))
}

/// Refuses `url` when it is inside a protected root or holds one.
fn check_not_protected(url: &str, protected: &[String]) -> Result<(), QueryError> {
    for root in protected {
        if url.starts_with(root.as_str()) || root.starts_with(url) {
            return Err(QueryError::PermissionDenied(format!(
                "{url} overlaps Osprey's own storage ({root}: the warehouse or the data \
                 directory), which is never reachable through an external location; choose a \
                 location outside it"
            )));
        }
    }
    Ok(())
}

/// `location` as a normalized URL prefix ending in `/` (a file's own URL when it names a
/// file): parsed as DataFusion parses table locations, without `.` or `..` segments, local
/// paths resolved through symbolic links.
pub fn normalize(location: &str) -> Result<String, QueryError> {
    let invalid = |why: &str| {
        QueryError::InvalidStatement(format!("location {location:?} is not usable: {why}"))
    };
    if location.trim().is_empty() {
        return Err(invalid("it is empty"));
    }
    if location.chars().any(char::is_control) {
        return Err(invalid("it contains a control character"));
    }
    // Dot segments are refused outright, before any parser resolves them one way or another.
    let decoded = percent_decode(location);
    if decoded
        .split(['/', '\\'])
        .any(|segment| segment == ".." || segment == ".")
    {
        return Err(invalid("`.` and `..` path segments are not allowed"));
    }
    let parsed = ListingTableUrl::parse(location).map_err(|err| invalid(&err.to_string()))?;
    let mut url: Url = AsRef::<Url>::as_ref(&parsed).clone();
    url.set_query(None);
    url.set_fragment(None);
    if url.scheme() == "file" {
        let path = url
            .to_file_path()
            .map_err(|_| invalid("not a local path"))?;
        let resolved = resolve_links(&path);
        let is_dir = url.path().ends_with('/') || resolved.is_dir();
        url = match is_dir {
            true => Url::from_directory_path(&resolved),
            false => Url::from_file_path(&resolved),
        }
        .map_err(|_| invalid("not an absolute local path"))?;
    }
    let mut text = url.to_string();
    if url.path().is_empty() || url.path() == "/" {
        text = format!("{}://{}/", url.scheme(), url.host_str().unwrap_or(""));
    }
    Ok(text)
}

/// `path` with its longest existing ancestor resolved through symbolic links.
fn resolve_links(path: &std::path::Path) -> std::path::PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut resolved = real;
            for part in rest.iter().rev() {
                resolved.push(part);
            }
            return resolved;
        }
        match (
            existing.file_name().map(|n| n.to_owned()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, is_admin: bool) -> Principal {
        Principal {
            user: name.to_string(),
            user_id: format!("{name}-id"),
            is_admin,
            session_id: None,
        }
    }

    async fn locations(dir: &std::path::Path) -> Locations {
        let store = CatalogStore::open("sqlite::memory:").await.unwrap();
        let raw = dir.join("raw");
        std::fs::create_dir_all(&raw).unwrap();
        let configured = vec![
            LocationConfig {
                name: "raw".into(),
                url: format!("{}/", raw.display()),
                users: vec!["ana".into()],
                read_only: true,
            },
            LocationConfig {
                name: "lake".into(),
                url: "s3://lake/shared/".into(),
                users: vec!["*".into()],
                read_only: false,
            },
        ];
        let warehouse = format!("file://{}/warehouse/", dir.display());
        let data = format!("{}/data/", dir.display());
        Locations::load(store, &configured, &[&warehouse, &data])
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn users_reach_only_their_granted_locations() {
        let dir = tempdir();
        let locations = locations(&dir).await;
        let ana = user("ana", false);
        let ben = user("ben", false);
        let raw = format!("{}/raw/2024/", dir.display());
        locations
            .check(Some(&ana), &raw, Access::Read, &|_| false)
            .unwrap();
        assert!(matches!(
            locations.check(Some(&ben), &raw, Access::Read, &|_| false),
            Err(QueryError::PermissionDenied(m)) if m.contains("lake (s3://lake/shared/)")
        ));
        assert!(matches!(
            locations.check(Some(&ana), &raw, Access::Write, &|_| false),
            Err(QueryError::PermissionDenied(m)) if m.contains("read-only")
        ));
        locations
            .check(Some(&ben), "s3://lake/shared/out/", Access::Write, &|_| {
                false
            })
            .unwrap();
        // A prefix must end at a segment: s3://lake/shared-other is not under s3://lake/shared/.
        assert!(
            locations
                .check(Some(&ben), "s3://lake/shared-other/", Access::Read, &|_| {
                    false
                })
                .is_err()
        );
        assert!(
            locations
                .check(Some(&ben), "s3://other/", Access::Read, &|_| false)
                .is_err()
        );
        // Admins reach anything but Osprey's own storage.
        let admin = user("root", true);
        locations
            .check(Some(&admin), "/etc/", Access::Read, &|_| false)
            .unwrap();
        for own in [
            format!("{}/warehouse/t/", dir.display()),
            format!("{}/data/catalog.db", dir.display()),
            format!("{}/", dir.display()),
        ] {
            assert!(
                matches!(
                    locations.check(Some(&admin), &own, Access::Read, &|_| false),
                    Err(QueryError::PermissionDenied(m)) if m.contains("never reachable")
                ),
                "{own}"
            );
        }
    }

    #[tokio::test]
    async fn dot_segments_and_links_do_not_escape() {
        let dir = tempdir();
        let locations = locations(&dir).await;
        let ana = user("ana", false);
        for sneaky in [
            format!("{}/raw/../data/", dir.display()),
            format!("{}/raw/%2e%2e/data/", dir.display()),
            "s3://lake/shared/../private/".to_string(),
        ] {
            assert!(
                locations
                    .check(Some(&ana), &sneaky, Access::Read, &|_| false)
                    .is_err(),
                "{sneaky}"
            );
        }
        std::os::unix::fs::symlink("/etc", dir.join("raw/etc")).unwrap();
        let linked = format!("{}/raw/etc/", dir.display());
        assert!(matches!(
            locations.check(Some(&ana), &linked, Access::Read, &|_| false),
            Err(QueryError::PermissionDenied(_))
        ));
    }

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("osprey-locations-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.canonicalize().unwrap()
    }
}
