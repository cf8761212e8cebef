//! Where an Iceberg catalog's tables may keep their files: an attached catalog's anywhere but
//! Osprey's own storage, Osprey's own under its warehouse only.

use crate::error::QueryError;
use crate::locations::Locations;

/// Where a catalog's tables may keep their files.
#[derive(Debug, Clone)]
pub(crate) enum TablePlaces {
    /// An attached catalog's tables: anywhere but Osprey's own storage (the warehouse and the
    /// data directory).
    OutsideOspreyStorage(Locations),
    /// Osprey's own Iceberg tables: under the warehouse (a URL ending in `/`) only.
    Warehouse(String),
}

impl TablePlaces {
    /// Checks that a table at `location` keeps its files where it may.
    pub(crate) fn check(&self, location: &str) -> Result<(), QueryError> {
        match self {
            Self::OutsideOspreyStorage(locations) => {
                locations.check_unprotected(location).map(drop)
            }
            Self::Warehouse(warehouse) => {
                let url = crate::locations::normalize(location)?;
                match url.starts_with(&crate::locations::normalize(warehouse)?) {
                    true => Ok(()),
                    false => Err(QueryError::PermissionDenied(format!(
                        "{location} is outside the warehouse ({warehouse}), where the tables of \
                         Osprey's own catalog keep their files"
                    ))),
                }
            }
        }
    }
}
